"""A scripted stand-in for the OpenAI Responses API, served on loopback.

The real Codex CLI is pointed at this server through a model provider in its
configuration (``base_url`` = :attr:`FakeResponsesServer.base_url`, ``wire_api =
"responses"``), so tests drive a genuine Codex agent loop (real shell commands, real
patches, real ``exec --json`` events) while the "model" answers from a script::

    def brain(request):
        if not outputs_since_prompt(request):
            return Reply.command("python -m pytest -q", call_id="call_pytest")
        return Reply.text("All done.")

    with FakeResponsesServer(brain) as server:
        ...  # run `codex exec --json` with the provider pointing at server.base_url
    assert "passed" in server.tool_output_for("call_pytest")

Only what Codex uses is implemented: ``POST /v1/responses`` streamed as server-sent
events in the Responses streaming format (``response.created``, one
``response.output_item.added`` / ``.done`` pair per output item with the deltas in
between, then ``response.completed`` with ``usage``, or ``response.failed``), an HTTP
error status with an OpenAI error body, and an empty answer to any other route.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

JSON = dict[str, Any]

# Small deltas make the fake stream look like a real one: Codex must reassemble text
# from several of them, as it does against the real API.
_TEXT_CHUNK = 24
# Item types the model produced (as Codex sends them back in `input` on the next request).
MODEL_ITEM_TYPES = frozenset({"function_call", "custom_tool_call", "local_shell_call"})
TOOL_OUTPUT_TYPES = frozenset({"function_call_output", "custom_tool_call_output"})


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True)
class ToolCall:
    """One tool call in a model answer.

    Attributes:
        name: The tool, as Codex advertises it (``exec_command``, ``apply_patch``, ...).
        arguments: The JSON arguments of a ``function`` tool.
        input: The raw input of a ``custom`` (freeform) tool such as ``apply_patch``.
        call_id: The id Codex answers with in ``function_call_output``.
    """

    name: str
    arguments: JSON | None = None
    input: str | None = None
    call_id: str = field(default_factory=lambda: _new_id("call"))

    def item(self) -> JSON:
        """The output item of this call, as the Responses API streams it."""
        if self.input is not None:
            return {
                "type": "custom_tool_call",
                "id": _new_id("ctc"),
                "status": "completed",
                "call_id": self.call_id,
                "name": self.name,
                "input": self.input,
            }
        return {
            "type": "function_call",
            "id": _new_id("fc"),
            "status": "completed",
            "call_id": self.call_id,
            "name": self.name,
            "arguments": json.dumps(self.arguments or {}),
        }


@dataclass(frozen=True)
class Reply:
    """One model answer, or one API failure, for a single ``/v1/responses`` request.

    Build replies with the class methods rather than the constructor.

    Attributes:
        text: The assistant message, when the answer has one.
        calls: Tool calls, after the message.
        reasoning: A reasoning summary, streamed before everything else.
        error_status: When set, answer with this HTTP status and an error body.
        error_code: The error body's ``error.code`` (or ``response.failed``'s).
        error_message: The error message.
        failed: Stream ``response.failed`` (status 200) instead of an answer.
        input_tokens: Reported ``usage.input_tokens``.
        cached_tokens: Reported ``usage.input_tokens_details.cached_tokens``.
        output_tokens: Reported ``usage.output_tokens``.
    """

    text: str | None = None
    calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    error_status: int | None = None
    error_code: str = "server_error"
    error_message: str = ""
    failed: bool = False
    input_tokens: int = 1000
    cached_tokens: int = 0
    output_tokens: int = 50

    @classmethod
    def message(cls, text: str, *, reasoning: str | None = None) -> Reply:
        """A final answer that ends Codex's turn.

        Args:
            text: The assistant's answer.
            reasoning: Optional reasoning summary streamed before it.

        Returns:
            A reply with one assistant message.
        """
        return cls(text=text, reasoning=reasoning)

    @classmethod
    def command(
        cls, cmd: str, *, call_id: str | None = None, reasoning: str | None = None
    ) -> Reply:
        """A reply that runs one shell command through Codex's ``exec_command`` tool.

        Args:
            cmd: The command line; Codex runs it with the user's shell.
            call_id: Fixed call id, to find its output later; random by default.
            reasoning: Optional reasoning summary streamed before the call.

        Returns:
            A reply with one function call.
        """
        return cls.tool("exec_command", {"cmd": cmd}, call_id=call_id, reasoning=reasoning)

    @classmethod
    def patch(cls, patch: str, *, call_id: str | None = None) -> Reply:
        """A reply that edits files through Codex's freeform ``apply_patch`` tool.

        Args:
            patch: ``*** Begin Patch`` ... ``*** End Patch`` text.
            call_id: Fixed call id; random by default.

        Returns:
            A reply with one custom tool call.
        """
        call = ToolCall("apply_patch", input=patch, call_id=call_id or _new_id("call"))
        return cls(calls=(call,))

    @classmethod
    def tool(
        cls,
        name: str,
        arguments: JSON,
        *,
        call_id: str | None = None,
        reasoning: str | None = None,
    ) -> Reply:
        """A reply that calls one function tool by name.

        Args:
            name: Tool name, e.g. ``exec_command`` or an MCP tool Codex advertises.
            arguments: The tool's JSON arguments.
            call_id: Fixed call id; random by default.
            reasoning: Optional reasoning summary streamed before the call.

        Returns:
            A reply with one function call.
        """
        call = ToolCall(name, arguments=dict(arguments), call_id=call_id or _new_id("call"))
        return cls(calls=(call,), reasoning=reasoning)

    @classmethod
    def error(
        cls, status: int = 500, code: str = "server_error", message: str = "Server error"
    ) -> Reply:
        """An HTTP error instead of a stream (Codex retries 5xx and 429).

        Args:
            status: HTTP status.
            code: OpenAI ``error.code``.
            message: OpenAI ``error.message``.

        Returns:
            An error reply.
        """
        return cls(error_status=status, error_code=code, error_message=message)

    @classmethod
    def failure(cls, code: str = "server_error", message: str = "The model failed") -> Reply:
        """A stream that ends in ``response.failed`` with this error.

        Args:
            code: ``response.error.code``.
            message: ``response.error.message``.

        Returns:
            A failing reply.
        """
        return cls(failed=True, error_code=code, error_message=message)

    def output_items(self) -> list[JSON]:
        """The output items of this answer, in stream order."""
        items: list[JSON] = []
        if self.reasoning:
            items.append(
                {
                    "type": "reasoning",
                    "id": _new_id("rs"),
                    "summary": [{"type": "summary_text", "text": self.reasoning}],
                }
            )
        if self.text is not None:
            items.append(
                {
                    "type": "message",
                    "id": _new_id("msg"),
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": self.text, "annotations": []}],
                }
            )
        items += [call.item() for call in self.calls]
        return items


Handler = Callable[[JSON], Reply]


def input_items(request: JSON) -> list[JSON]:
    """The ``input`` items of a Responses request, dicts only."""
    return [i for i in request.get("input") or [] if isinstance(i, dict)]


def item_text(item: JSON) -> str:
    """The text of a ``message`` input item (its text parts joined)."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    parts = [str(p.get("text", "")) for p in content or [] if isinstance(p, dict)]
    return "\n".join(p for p in parts if p)


def user_texts(request: JSON) -> list[str]:
    """The texts of the request's user messages, in order."""
    return [
        item_text(i)
        for i in input_items(request)
        if i.get("type") == "message" and i.get("role") == "user"
    ]


def is_model_output(item: JSON) -> bool:
    """Whether an input item is something the model said (a call or a message)."""
    if item.get("type") in MODEL_ITEM_TYPES:
        return True
    return item.get("type") == "message" and item.get("role") == "assistant"


def tool_outputs(request: JSON) -> dict[str, str]:
    """call_id -> output text of every tool result in the request's input."""
    found: dict[str, str] = {}
    for item in input_items(request):
        if item.get("type") in TOOL_OUTPUT_TYPES:
            output = item.get("output")
            if isinstance(output, list):
                output = "\n".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
            found[str(item.get("call_id"))] = str(output)
    return found


@dataclass
class RecordedRequest:
    """One HTTP request the fake server received.

    Attributes:
        method: HTTP method.
        path: Path without the query string.
        headers: Request headers, names lower-cased.
        body: Decoded JSON body, or None.
        reply: What the server answered, for a ``/responses`` request.
        received_at: ``time.monotonic()`` on arrival.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: JSON | None
    reply: Reply | None = None
    received_at: float = field(default_factory=time.monotonic)


def _sse(data: JSON) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


def _chunks(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _usage(reply: Reply) -> JSON:
    return {
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": reply.cached_tokens},
        "output_tokens": reply.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.input_tokens + reply.output_tokens,
    }


def stream_events(reply: Reply, model: str) -> Iterator[JSON]:
    """The server-sent events of one streamed answer, as decoded JSON objects."""
    response: JSON = {
        "id": _new_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "model": model,
        "output": [],
        "usage": None,
    }
    sequence = 0

    def event(kind: str, **fields: Any) -> JSON:
        nonlocal sequence
        sequence += 1
        return {"type": kind, "sequence_number": sequence, **fields}

    yield event("response.created", response=dict(response))
    yield event("response.in_progress", response=dict(response))
    if reply.failed:
        failed = {
            **response,
            "status": "failed",
            "error": {"code": reply.error_code, "message": reply.error_message},
        }
        yield event("response.failed", response=failed)
        return
    items = reply.output_items()
    for index, item in enumerate(items):
        yield from _item_events(event, index, item)
    done = {**response, "status": "completed", "output": items, "usage": _usage(reply)}
    yield event("response.completed", response=done)


def _item_events(event: Callable[..., JSON], index: int, item: JSON) -> Iterator[JSON]:
    kind = item["type"]
    if kind == "message":
        yield event("response.output_item.added", output_index=index, item={**item, "content": []})
        text = item["content"][0]["text"]
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        yield event(
            "response.content_part.added",
            **where,
            part={"type": "output_text", "text": "", "annotations": []},
        )
        for chunk in _chunks(text, _TEXT_CHUNK):
            yield event("response.output_text.delta", **where, delta=chunk)
        yield event("response.output_text.done", **where, text=text)
        yield event("response.content_part.done", **where, part=item["content"][0])
    elif kind == "reasoning":
        yield event("response.output_item.added", output_index=index, item={**item, "summary": []})
        text = item["summary"][0]["text"]
        where = {"item_id": item["id"], "output_index": index, "summary_index": 0}
        yield event(
            "response.reasoning_summary_part.added",
            **where,
            part={"type": "summary_text", "text": ""},
        )
        for chunk in _chunks(text, _TEXT_CHUNK):
            yield event("response.reasoning_summary_text.delta", **where, delta=chunk)
        yield event("response.reasoning_summary_text.done", **where, text=text)
    elif kind == "function_call":
        yield event(
            "response.output_item.added",
            output_index=index,
            item={**item, "arguments": "", "status": "in_progress"},
        )
        where = {"item_id": item["id"], "output_index": index}
        for chunk in _chunks(item["arguments"], _TEXT_CHUNK):
            yield event("response.function_call_arguments.delta", **where, delta=chunk)
        yield event("response.function_call_arguments.done", **where, arguments=item["arguments"])
    elif kind == "custom_tool_call":
        yield event(
            "response.output_item.added",
            output_index=index,
            item={**item, "input": "", "status": "in_progress"},
        )
        where = {"item_id": item["id"], "output_index": index}
        for chunk in _chunks(item["input"], _TEXT_CHUNK):
            yield event("response.custom_tool_call_input.delta", **where, delta=chunk)
        yield event("response.custom_tool_call_input.done", **where, input=item["input"])
    yield event("response.output_item.done", output_index=index, item=item)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        # The default handler writes every request to stderr, drowning pytest output.
        del format, args

    def do_GET(self) -> None:
        self._record(None)
        self._send_json(404, {"error": {"message": "not found", "code": "not_found"}})

    def do_POST(self) -> None:
        body = self._read_json()
        path = urlsplit(self.path).path.rstrip("/")
        if path.endswith("/responses") and body is not None:
            self._answer(body)
        else:
            self._record(body)
            self._send_json(404, {"error": {"message": "not found", "code": "not_found"}})

    def _answer(self, body: JSON) -> None:
        try:
            reply = self.server.handler(body)
        except Exception as exc:
            # A broken script must fail the test visibly, not hang Codex in retries:
            # answer 400 (not retried) and keep the exception.
            self.server.script_errors.append(exc)
            reply = Reply.error(400, "invalid_request_error", f"fake script raised {exc!r}")
        self._record(body, reply)
        if reply.error_status is not None:
            error = {
                "error": {
                    "message": reply.error_message,
                    "type": reply.error_code,
                    "code": reply.error_code,
                    "param": None,
                }
            }
            # retry-after 0 keeps Codex's retries fast when a test scripts an outage.
            self._send_json(reply.error_status, error, extra_headers={"retry-after": "0"})
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("x-request-id", _new_id("req"))
        # Without a content length the end of the stream is the end of the connection.
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        for data in stream_events(reply, str(body.get("model") or "gpt-fake")):
            self.wfile.write(_sse(data))
            self.wfile.flush()

    def _read_json(self) -> JSON | None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.headers.get("content-encoding", "").lower() == "zstd":
            return None
        try:
            data = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def _record(self, body: JSON | None, reply: Reply | None = None) -> None:
        self.server.record(
            RecordedRequest(
                method=self.command,
                path=urlsplit(self.path).path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                reply=reply,
            )
        )

    def _send_json(
        self, status: int, payload: JSON, *, extra_headers: dict[str, str] | None = None
    ) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: Handler) -> None:
        super().__init__(("127.0.0.1", 0), _RequestHandler)
        self.handler = handler
        self.requests: list[RecordedRequest] = []
        self.script_errors: list[Exception] = []
        self._lock = threading.Lock()

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


class FakeResponsesServer:
    """A threaded fake Responses API on ``127.0.0.1`` with a free port.

    Args:
        handler: Called with each ``/responses`` request body; returns the answer.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeResponsesServer:
        """Bind a free loopback port and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("server already started")
        self._server = _Server(self.handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-responses",
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

    def __enter__(self) -> FakeResponsesServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The provider's ``base_url`` (ends in ``/v1``, as OpenAI's does)."""
        if self._server is None:
            raise RuntimeError("server not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        if self._server is None:
            return []
        with self._server._lock:
            return list(self._server.requests)

    @property
    def script_errors(self) -> list[Exception]:
        """Exceptions raised by the handler; each was answered with an HTTP 400."""
        return [] if self._server is None else list(self._server.script_errors)

    def model_requests(self) -> list[JSON]:
        """Bodies of the ``/responses`` requests, in order."""
        return [
            r.body for r in self.requests if r.body is not None and r.path.endswith("/responses")
        ]

    def tool_output_for(self, call_id: str) -> str | None:
        """What Codex answered to one scripted tool call, if it answered.

        Args:
            call_id: The id of a scripted call.

        Returns:
            The output text, or None when Codex never sent it back.
        """
        for body in self.model_requests():
            found = tool_outputs(body).get(call_id)
            if found is not None:
                return found
        return None
