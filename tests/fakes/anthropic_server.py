"""A scripted stand-in for the Anthropic Messages API, served on loopback.

The real Claude Code CLI can be pointed at this server with ``ANTHROPIC_BASE_URL`` so tests
drive a genuine agent loop (real tool execution, real stream-json output) while the "model"
answers from a script. Example::

    script = ScriptedModel(
        turns=[
            Reply.tool("Read", {"file_path": "/abs/path/README.md"}),
            Reply.tool("Bash", {"command": "python -c 'print(1)'"}),
            Reply.text("All done."),
        ]
    )
    with FakeAnthropicServer(script) as server:
        env = {"ANTHROPIC_BASE_URL": server.base_url, ...}
        ...
    assert server.tool_results()[-1]["content"] ...

Only the subset of the API that Claude Code uses is implemented: ``POST /v1/messages``
(streamed as server-sent events or as one JSON body), ``POST /v1/messages/count_tokens``,
and a permissive answer to any other probe so the CLI never waits on a missing route.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

JSON = dict[str, Any]
RequestKind = Literal["main", "side", "count_tokens", "other"]

# Small chunks make the fake stream look like a real one: the CLI must reassemble
# text and tool input JSON from several deltas, which is what the real API does.
_TEXT_CHUNK = 24
_JSON_CHUNK = 16


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True)
class TextBlock:
    """A ``text`` content block of an assistant reply."""

    text: str


@dataclass(frozen=True)
class ToolUseBlock:
    """A ``tool_use`` content block: the model asks the CLI to run tool ``name``."""

    name: str
    input: JSON
    id: str = field(default_factory=lambda: _new_id("toolu"))


Block = TextBlock | ToolUseBlock


@dataclass(frozen=True)
class Reply:
    """One model answer, or one API error, for a single ``/v1/messages`` request.

    Build replies with the class methods rather than the constructor.

    Attributes:
        content: Content blocks of the assistant message, in order.
        stop_reason: ``end_turn`` for a final answer, ``tool_use`` when tools were called,
            ``max_tokens`` etc. for anything else the test wants to simulate.
        error_status: When set, the server answers with this HTTP status and an
            Anthropic-style error body instead of a message.
        error_type: ``error.type`` of the error body (e.g. ``overloaded_error``).
        error_message: ``error.message`` of the error body.
        input_tokens: Reported ``usage.input_tokens``.
        output_tokens: Reported ``usage.output_tokens``.
    """

    content: tuple[Block, ...] = ()
    stop_reason: str = "end_turn"
    error_status: int | None = None
    error_type: str = "api_error"
    error_message: str = ""
    input_tokens: int = 100
    output_tokens: int = 20

    @classmethod
    def text(cls, text: str) -> Reply:
        """A final text answer that ends the agent loop.

        Args:
            text: The assistant's answer.

        Returns:
            A reply with one text block and stop reason ``end_turn``.
        """
        return cls(content=(TextBlock(text),), stop_reason="end_turn")

    @classmethod
    def tool(
        cls, name: str, tool_input: JSON, *, text: str | None = None, tool_id: str | None = None
    ) -> Reply:
        """A reply that calls one tool.

        Args:
            name: Tool name as the CLI advertises it (``Read``, ``Write``, ``Bash``...).
            tool_input: The tool's input object, e.g. ``{"file_path": "/abs/file"}``.
            text: Optional text block sent before the tool call.
            tool_id: Fixed ``tool_use`` id; a random ``toolu_...`` id by default.

        Returns:
            A reply with stop reason ``tool_use``.
        """
        return cls.tools([(name, tool_input)], text=text, tool_ids=[tool_id] if tool_id else None)

    @classmethod
    def tools(
        cls,
        calls: Sequence[tuple[str, JSON]],
        *,
        text: str | None = None,
        tool_ids: Sequence[str] | None = None,
    ) -> Reply:
        """A reply that calls several tools in parallel.

        Args:
            calls: ``(name, input)`` pairs, one per ``tool_use`` block.
            text: Optional text block sent before the tool calls.
            tool_ids: Fixed ids, one per call; random ids by default.

        Returns:
            A reply with stop reason ``tool_use``.
        """
        ids = list(tool_ids) if tool_ids else [_new_id("toolu") for _ in calls]
        if len(ids) != len(calls):
            raise ValueError("tool_ids must match calls one to one")
        blocks: list[Block] = [TextBlock(text)] if text else []
        blocks += [ToolUseBlock(n, dict(i), id=t) for (n, i), t in zip(calls, ids, strict=True)]
        return cls(content=tuple(blocks), stop_reason="tool_use")

    @classmethod
    def error(
        cls,
        status: int = 529,
        error_type: str = "overloaded_error",
        message: str = "Overloaded",
    ) -> Reply:
        """An API error instead of a message (the CLI may retry it).

        Args:
            status: HTTP status, e.g. 529 overloaded, 500 api_error, 400 invalid_request_error.
            error_type: Anthropic ``error.type``.
            message: Anthropic ``error.message``.

        Returns:
            An error reply.
        """
        return cls(error_status=status, error_type=error_type, error_message=message)

    @property
    def is_error(self) -> bool:
        """Whether this reply is an HTTP error rather than a message."""
        return self.error_status is not None


Handler = Callable[[JSON], Reply]


def last_user_blocks(request: JSON) -> list[JSON]:
    """Content blocks of the last user message of a Messages request.

    Args:
        request: The decoded JSON body of a ``/v1/messages`` request.

    Returns:
        The blocks, with a plain string content turned into one text block.
    """
    for message in reversed(request.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return [{"type": "text", "text": content}]
        return [b for b in content or [] if isinstance(b, dict)]
    return []


def tool_result_blocks(request: JSON) -> list[JSON]:
    """The ``tool_result`` blocks the CLI sent back in the last user message.

    Args:
        request: The decoded JSON body of a ``/v1/messages`` request.

    Returns:
        The blocks, each with ``tool_use_id``, ``content`` and maybe ``is_error``.
    """
    return [b for b in last_user_blocks(request) if b.get("type") == "tool_result"]


def tool_result_text(block: JSON) -> str:
    """Flatten a ``tool_result`` block's content to text.

    Args:
        block: A ``tool_result`` block; its content is a string or a list of blocks.

    Returns:
        The concatenated text parts.
    """
    content = block.get("content")
    if isinstance(content, str):
        return content
    parts = [c.get("text", "") for c in content or [] if isinstance(c, dict)]
    return "\n".join(p for p in parts if p)


def system_text(request: JSON) -> str:
    """The system prompt of a Messages request as one string.

    Args:
        request: The decoded JSON body of a ``/v1/messages`` request.

    Returns:
        The system text blocks joined by newlines ("" when absent).
    """
    system = request.get("system")
    if isinstance(system, str):
        return system
    return "\n".join(b.get("text", "") for b in system or [] if isinstance(b, dict))


def is_side_request(request: JSON) -> bool:
    """Whether a Messages request is CLI housekeeping rather than an agent-loop turn.

    Besides the agent loop, the CLI may call the model for session titles, summaries,
    quota probes or Bash command classification. Those calls never carry the tool list
    (the agent loop always does, since the CLI always offers tools), and quota probes ask
    for a single token, so they are recognisable without knowing each prompt.

    Args:
        request: The decoded JSON body of a ``/v1/messages`` request.

    Returns:
        True for a side request that must not consume a scripted turn.
    """
    if not request.get("tools"):
        return True
    max_tokens = request.get("max_tokens")
    return isinstance(max_tokens, int) and max_tokens <= 1


class ScriptedModel:
    """Decides each agent-loop reply: from a fixed list of turns, or from a callable.

    Side requests (see :func:`is_side_request`) get a short text reply and never consume
    a turn, so a script describes only what the agent loop sees.

    Args:
        turns: Replies handed out in order, one per agent-loop request. An error reply
            consumes a turn too, so ``[Reply.error(), Reply.text("ok")]`` fails once
            and then succeeds on the CLI's retry.
        handler: Alternative to ``turns``: called with each agent-loop request body.
        side_reply: Text given to side requests.
        when_exhausted: Reply once ``turns`` run out; a plain text answer by default so
            the CLI ends cleanly instead of looping.
    """

    def __init__(
        self,
        turns: Sequence[Reply] | None = None,
        *,
        handler: Handler | None = None,
        side_reply: str = "OK",
        when_exhausted: Reply | None = None,
    ) -> None:
        if (turns is None) == (handler is None):
            raise ValueError("give exactly one of turns or handler")
        self._turns = list(turns or [])
        self._handler = handler
        self._side_reply = side_reply
        self._when_exhausted = when_exhausted or Reply.text("(script exhausted)")
        self._lock = threading.Lock()
        self.turns_used = 0
        self.exhausted_calls = 0

    @property
    def remaining(self) -> int:
        """Scripted turns not yet handed out (0 for a handler script)."""
        return max(len(self._turns) - self.turns_used, 0)

    def side(self, request: JSON) -> Reply:
        """Reply to a side request.

        Args:
            request: The decoded request body (unused; kept for overriding).

        Returns:
            A short text reply.
        """
        del request
        return Reply.text(self._side_reply)

    def next_reply(self, request: JSON) -> Reply:
        """Reply to an agent-loop request.

        Args:
            request: The decoded request body.

        Returns:
            The next scripted reply, or the handler's answer.
        """
        if self._handler is not None:
            return self._handler(request)
        with self._lock:
            if self.turns_used < len(self._turns):
                reply = self._turns[self.turns_used]
                self.turns_used += 1
                return reply
            self.exhausted_calls += 1
            return self._when_exhausted


Script = ScriptedModel | Handler


@dataclass
class RecordedRequest:
    """One HTTP request the fake server received.

    Attributes:
        method: HTTP method.
        path: Path without the query string.
        query: Raw query string.
        headers: Request headers (last value wins).
        body: Decoded JSON body, or None.
        kind: How the server classified it.
        reply: What the server answered for a Messages request.
        received_at: ``time.monotonic()`` on arrival.
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: JSON | None
    kind: RequestKind
    reply: Reply | None = None
    received_at: float = field(default_factory=time.monotonic)


def _sse(event: str, data: JSON) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _chunks(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _usage(reply: Reply, output_tokens: int) -> JSON:
    return {
        "input_tokens": reply.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }


def _message_json(reply: Reply, model: str, message_id: str) -> JSON:
    content: list[JSON] = []
    for block in reply.content:
        if isinstance(block, TextBlock):
            content.append({"type": "text", "text": block.text})
        else:
            content.append(
                {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
            )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": _usage(reply, reply.output_tokens),
    }


def _sse_events(reply: Reply, model: str, message_id: str) -> Iterator[bytes]:
    start = _message_json(reply, model, message_id)
    start.update(content=[], stop_reason=None, usage=_usage(reply, 1))
    yield _sse("message_start", {"type": "message_start", "message": start})
    yield _sse("ping", {"type": "ping"})
    for index, block in enumerate(reply.content):
        if isinstance(block, TextBlock):
            head: JSON = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": c} for c in _chunks(block.text, _TEXT_CHUNK)]
        else:
            head = {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
            raw = json.dumps(block.input)
            deltas = [
                {"type": "input_json_delta", "partial_json": c} for c in _chunks(raw, _JSON_CHUNK)
            ]
        yield _sse(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": head},
        )
        for delta in deltas:
            yield _sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": reply.output_tokens},
        },
    )
    yield _sse("message_stop", {"type": "message_stop"})


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        # The default handler writes every request to stderr, drowning pytest output.
        del format, args

    def do_HEAD(self) -> None:
        self._record(None, "other")
        self._send_json(200, {}, head_only=True)

    def do_GET(self) -> None:
        self._record(None, "other")
        self._send_json(200, {})

    def do_POST(self) -> None:
        body = self._read_json()
        path = urlsplit(self.path).path.rstrip("/")
        if path.endswith("/v1/messages/count_tokens"):
            self._record(body, "count_tokens")
            # A rough token count is enough: the CLI only uses it for context accounting.
            self._send_json(200, {"input_tokens": max(len(json.dumps(body)) // 4, 1)})
        elif path.endswith("/v1/messages") and body is not None:
            self._answer_messages(body)
        else:
            self._record(body, "other")
            self._send_json(200, {})

    def _answer_messages(self, body: JSON) -> None:
        script = self.server.script
        side = is_side_request(body)
        try:
            reply = script.side(body) if side else script.next_reply(body)
        except Exception as exc:
            # A broken dynamic script must fail the test visibly, not hang the CLI in
            # retries on a dropped connection: answer 500 and keep the exception.
            self.server.script_errors.append(exc)
            reply = Reply.error(500, "api_error", f"fake script raised {exc!r}")
        self._record(body, "side" if side else "main", reply)
        if reply.error_status is not None:
            error = {
                "type": "error",
                "error": {"type": reply.error_type, "message": reply.error_message},
            }
            # retry-after 0 keeps the CLI's retries fast when a test scripts an outage.
            self._send_json(reply.error_status, error, extra_headers={"retry-after": "0"})
            return
        model = str(body.get("model") or "claude-fake")
        message_id = _new_id("msg")
        if not body.get("stream"):
            self._send_json(200, _message_json(reply, model, message_id))
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("request-id", _new_id("req"))
        # Without a content length the end of the stream is the end of the connection.
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        for chunk in _sse_events(reply, model, message_id):
            self.wfile.write(chunk)
            self.wfile.flush()

    def _read_json(self) -> JSON | None:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            raw = self._read_chunked()
        else:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            data = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _record(self, body: JSON | None, kind: RequestKind, reply: Reply | None = None) -> None:
        split = urlsplit(self.path)
        self.server.record(
            RecordedRequest(
                method=self.command,
                path=split.path,
                query=split.query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                kind=kind,
                reply=reply,
            )
        )

    def _send_json(
        self,
        status: int,
        payload: JSON,
        *,
        head_only: bool = False,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.send_header("request-id", _new_id("req"))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head_only:
            self.wfile.write(raw)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: ScriptedModel) -> None:
        super().__init__(("127.0.0.1", 0), _RequestHandler)
        self.script = script
        self.requests: list[RecordedRequest] = []
        self.script_errors: list[Exception] = []
        self._lock = threading.Lock()

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


class FakeAnthropicServer:
    """A threaded fake Anthropic API on ``127.0.0.1`` with a free port.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.

    Args:
        script: A :class:`ScriptedModel`, or a callable ``(request_json) -> Reply`` that
            is wrapped in one (so side requests still bypass it).
    """

    def __init__(self, script: Script) -> None:
        self.script = script if isinstance(script, ScriptedModel) else ScriptedModel(handler=script)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeAnthropicServer:
        """Bind a free loopback port and serve in a background thread.

        Returns:
            This server, for chaining.
        """
        if self._server is not None:
            raise RuntimeError("server already started")
        self._server = _Server(self.script)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-anthropic",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> FakeAnthropicServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """Value for ``ANTHROPIC_BASE_URL`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        if self._server is None:
            return []
        with self._server._lock:
            return list(self._server.requests)

    @property
    def script_errors(self) -> list[Exception]:
        """Exceptions raised by the script; each was answered with an HTTP 500."""
        return [] if self._server is None else list(self._server.script_errors)

    def main_requests(self) -> list[JSON]:
        """Bodies of the agent-loop ``/v1/messages`` requests, in order."""
        return [r.body for r in self.requests if r.kind == "main" and r.body is not None]

    def side_requests(self) -> list[JSON]:
        """Bodies of the side ``/v1/messages`` requests, in order."""
        return [r.body for r in self.requests if r.kind == "side" and r.body is not None]

    def tool_results(self) -> list[JSON]:
        """Every ``tool_result`` block the CLI sent back, in the order it sent them.

        Each agent-loop request repeats the whole conversation, so only the blocks of
        each request's last user message are taken: nothing is counted twice.
        """
        return [b for body in self.main_requests() for b in tool_result_blocks(body)]

    def tool_result_for(self, tool_use_id: str) -> JSON | None:
        """The ``tool_result`` block answering one ``tool_use`` id, if it came back.

        Args:
            tool_use_id: The id of a scripted ``tool_use`` block.

        Returns:
            The block, or None when the CLI never answered that call.
        """
        for block in self.tool_results():
            if block.get("tool_use_id") == tool_use_id:
                return block
        return None
