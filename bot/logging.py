"""Structured logs: one JSON object per line, with the task, user and job in context.

Both structlog loggers and the standard library's (`logging.getLogger(__name__)`, as
used throughout, and the libraries' own) end in the same renderer, so every line has
the same shape. Context bound with `structlog.contextvars.bind_contextvars` (task id,
user, job id; see `jobs.work` and `slack_log_context`) is added to every line logged
while it is bound, whichever logger wrote it.

Before rendering, every string in the line is scrubbed: values that look like Slack,
GitHub or AWS credentials, passwords in URLs, the values of keys named like secrets,
and the exact values of the process's own secrets are replaced with a mask.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Callable, Iterable, MutableMapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

MASK = "[REDACTED]"

TOKEN_PATTERNS = (
    re.compile(r"xox[abposer]-[A-Za-z0-9-]{6,}"),  # Slack bot/user/legacy tokens
    re.compile(r"xapp-[0-9]+-[A-Za-z0-9-]{6,}"),  # Slack app-level tokens
    re.compile(r"xoxe\.xox[bp]-[A-Za-z0-9-]{6,}"),  # Slack rotating tokens
    re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub classic and app tokens
    re.compile(r"github_pat_[A-Za-z0-9_]{20,}"),  # GitHub fine-grained tokens
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"sk-ant-[A-Za-z0-9_-]{10,}"),  # Anthropic API keys
    # AWS secret access keys: 40 characters of base64 with mixed case. Requiring an
    # upper-case letter keeps git SHAs (lower-case hex) readable.
    re.compile(
        r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*[a-z])"
        r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
    ),
    re.compile(r"(?i)(authorization:\s*(?:bearer|token|basic)\s+)\S+"),
)
# user:password@ in any URL (database, Redis, git remotes).
URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@")
SECRET_KEY = re.compile(r"(?i)(secret|token|password|passwd|api_?key|authorization|credential)")
# Keys whose values are safe even though their names look secret-ish.
SAFE_KEYS = frozenset({"token_count", "tokens", "input_tokens", "output_tokens"})
# Secrets this short would mask common words; real credentials are far longer.
MIN_SECRET_LENGTH = 8


def secrets_of(settings: Any) -> list[str]:
    """The secret values a Settings object holds: SecretStr fields and URL passwords."""
    from pydantic import SecretStr

    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, str) and "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                found.append(password)
    return [secret for secret in found if len(secret) >= MIN_SECRET_LENGTH]


class Redactor:
    """A structlog processor that masks credentials anywhere in an event."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        from bot.mrkdwn import escape

        kept = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        # Text bound for Slack is escaped (`&` → `&amp;`, ...) before it is masked, so a
        # secret with those characters is looked for in its escaped form too. Longest
        # first, so no secret is half-masked by a shorter one inside it.
        self.secrets = sorted(kept | {escape(s) for s in kept}, key=len)[::-1]

    def scrub(self, text: str) -> str:
        """`text` with every credential in it masked."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern in TOKEN_PATTERNS:
            if pattern.groups:
                text = pattern.sub(lambda m: m.group(1) + MASK, text)
            else:
                text = pattern.sub(MASK, text)
        return URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)

    def _clean(self, value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if depth > 5:
            return value
        if isinstance(value, MutableMapping):
            return {k: self._field(str(k), v, depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self._clean(v, depth + 1) for v in value]
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        return self.scrub(repr(value) if not isinstance(value, BaseException) else str(value))

    def _field(self, key: str, value: Any, depth: int) -> Any:
        if key not in SAFE_KEYS and SECRET_KEY.search(key) and isinstance(value, str) and value:
            return MASK
        return self._clean(value, depth)

    def __call__(self, _logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        """Mask credentials in every value (and in the message itself)."""
        return {key: self._field(key, value, 0) for key, value in event_dict.items()}


def _drop_color_message(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("color_message", None)
    return event_dict


def configure(
    level: str = "INFO",
    secrets: Iterable[str] = (),
    *,
    stream: Any = None,
    json: bool | None = None,
) -> Redactor:
    """Send every log line, stdlib or structlog, through one redacting renderer.

    Args:
        level: The root level (DEBUG, INFO, ...).
        secrets: Exact values to mask wherever they appear (the process's secrets).
        stream: Where lines go (standard error by default).
        json: JSON lines (the default unless `stream` is a terminal), else a
            human-readable console format; both are redacted.

    Returns:
        The redactor in use, so callers can scrub text they hand elsewhere.
    """
    stream = stream if stream is not None else sys.stderr
    if json is None:
        json = not (hasattr(stream, "isatty") and stream.isatty())
    redactor = Redactor(secrets)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(default=str)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _drop_color_message,
            redactor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return redactor


P = ParamSpec("P")
T = TypeVar("T")


class ContextCopyingExecutor(ThreadPoolExecutor):
    """A thread pool whose tasks run in the submitter's context (Bolt's listener pool).

    Bolt runs listeners on pool threads; without copying, the user bound by
    `slack_log_context` on the request thread would not reach the listener's lines.
    """

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run `fn` on the pool inside a copy of the caller's context."""
        context = contextvars.copy_context()

        def run() -> T:
            return context.run(fn, *args, **kwargs)

        return super().submit(run)


def gunicorn_logger_class() -> type:
    """A gunicorn logger whose error and access lines go through `configure`'s handler.

    Gunicorn gives its two loggers handlers and formats of its own; this class drops
    them and lets the lines propagate to the root logger, so they come out as JSON,
    redacted, like every other line. Use it as gunicorn's `logger_class` setting.
    """
    from gunicorn.glogging import Logger

    class JsonGunicornLogger(Logger):  # type: ignore[misc]
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for logger in (self.error_log, self.access_log):
                for handler in list(logger.handlers):
                    logger.removeHandler(handler)
                logger.propagate = True

    return JsonGunicornLogger


def task_in_request(body: dict[str, Any]) -> str | None:
    """The task a Slack request acts on (`T-12`), when its body names one.

    Read as the listeners read it: task buttons carry the task id as their value, the
    reason modals carry it first in their private metadata, and task commands take it
    as their first argument. A value the listeners would refuse names no task.
    """
    from bot import blocks
    from bot.commands import parse
    from bot.listeners.fields import button_value, modal_task_id, plan_ref, row_id
    from jobs.exceptions import BadRequest

    task_id: int | None = None
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions")
        action = actions[0] if isinstance(actions, list) and actions else None
        task_buttons = (blocks.CANCEL, blocks.RETRY)
        if isinstance(action, dict) and action.get("action_id") in task_buttons:
            task_id = row_id(button_value(body))
        elif isinstance(action, dict) and action.get("action_id") in blocks.PLAN_BUTTONS:
            ref = plan_ref(button_value(body))
            task_id = None if ref is None else ref[0]
    elif kind == "view_submission":
        view = body.get("view")
        if isinstance(view, dict) and view.get("callback_id") in (
            blocks.REJECT_VIEW,
            blocks.APPROVE_VIEW,
            blocks.CHANGES_VIEW,
        ):
            task_id = modal_task_id(view)
    elif body.get("command"):
        try:
            task_id = parse(str(body.get("text", ""))).task_id
        except BadRequest:
            task_id = None
    return None if task_id is None else f"T-{task_id}"


def bind_task(task_id: int | str, job_id: str | None = None) -> None:
    """Name a task (and its job, once known) on every line logged from here on.

    Call it where a request starts acting on a task found some other way than its
    body (a job enqueued for it, say), so the lines that follow can be found by task.
    """
    key = task_id if isinstance(task_id, str) else f"T-{task_id}"
    structlog.contextvars.bind_contextvars(task_id=key, **({"job_id": job_id} if job_id else {}))


def slack_log_context(body: dict[str, Any], next: Callable[[], Any]) -> Any:
    """Bolt middleware: bind the Slack user, channel and task to every line of a request.

    Bolt runs listeners after the whole middleware chain has returned, so the context
    cannot be scoped with a `with` block here; instead each request starts from a clean
    context on its thread, and `ContextCopyingExecutor` carries it to the listener.
    """
    user = body.get("user_id") or (body.get("user") or {}).get("id")
    channel = body.get("channel_id") or (body.get("channel") or {}).get("id")
    task = task_in_request(body)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        **{k: v for k, v in (("user", user), ("channel", channel), ("task_id", task)) if v}
    )
    return next()
