"""The WSGI side of a webhook: a bounded body, a verified sender, a JSON answer.

Every endpoint reads the body (refusing more than a megabyte), asks its source to
verify the signature, parses the JSON, and hands the result to the source. Whatever
the input, the answer is a short JSON object: 4xx for bad input (nothing written),
2xx once the delivery was understood (with what was done, or why nothing was), 503
when the database or queue is away, and a bare 500 only for a fault of our own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs

from pydantic import SecretStr
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from bot.settings import PLACEHOLDER_SECRETS
from jobs.deliveries import KEEP
from jobs.exceptions import LimitReached, Unavailable
from jobs.models import Task, utcnow

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
DRAIN_LIMIT_BYTES = 8 * MAX_BODY_BYTES
StartResponse = Callable[..., Any]
Environ = dict[str, Any]

REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    413: "Content Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Refused(Exception):
    """The request is refused as it stands; nothing was written."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> Refused:
    """A body that is not what the sender documents (400)."""
    return Refused(400, message)


def unauthorized(message: str) -> Refused:
    """A signature that is missing or does not match (401)."""
    return Refused(401, message)


@dataclass(frozen=True)
class Delivery:
    """One webhook request: its raw body and its headers (names in lower case)."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str:
        """A header's value, or "" when it was not sent."""
        return self.headers.get(name.lower(), "")

    def header_key(self, source: str, name: str) -> list[str]:
        """The sender's own id for this delivery, as a record key (none when not sent).

        Headers are outside the signature, so this alone does not stop a replay.
        """
        value = self.header(name)
        return [f"{source}:{value}"] if value else []

    def body_key(self, source: str) -> str:
        """A record key for the signed body itself: the same body acts once, whatever
        the headers that came with it say."""
        return f"{source}:body:{hashlib.sha256(self.body).hexdigest()}"


@dataclass(frozen=True)
class Outcome:
    """What the sender is told: an HTTP status and a small JSON object.

    `task_id` is the task created, if any (for follow-up work; not sent).
    """

    status: int
    payload: dict[str, Any]
    task_id: int | None = None

    @classmethod
    def created(cls, task: Task) -> Outcome:
        """A task was created for this delivery."""
        payload = {"status": "created", "task": task.key, "channel": task.channel}
        return cls(201, payload, task_id=task.id)

    @classmethod
    def ignored(cls, reason: str) -> Outcome:
        """Understood, and deliberately nothing was done."""
        return cls(202, {"status": "ignored", "reason": reason})

    @classmethod
    def duplicate(cls) -> Outcome:
        """This delivery was processed before; nothing new was done."""
        return cls(200, {"status": "duplicate"})

    @classmethod
    def exists(cls, task_key: str) -> Outcome:
        """A task for the same origin is still open; it was not created twice."""
        return cls(200, {"status": "exists", "task": task_key})


class Source(Protocol):
    """One sender of webhooks: how it signs, and what its deliveries mean."""

    name: str
    secret: str

    def verify(self, delivery: Delivery) -> None:
        """Raise `Refused` (401) unless the delivery carries a valid signature."""

    def handle(self, delivery: Delivery, payload: dict[str, Any]) -> Outcome:
        """Act on a verified delivery whose body is a JSON object."""


def effective_secret(from_environment: SecretStr, from_config: SecretStr | None) -> str:
    """The secret to verify with: the environment's, else the config file's.

    Placeholder values count as unset, so a sample `.env` never opens an endpoint.
    """
    for candidate in (from_environment, from_config):
        value = candidate.get_secret_value().strip() if candidate is not None else ""
        if value and value.lower() not in PLACEHOLDER_SECRETS:
            return value
    return ""


def hmac_sha256(secret: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of a body, the digest all three senders use."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(secret: str, body: bytes, sent: str, *, prefix: str, header: str) -> None:
    """Compare a sent signature with ours in constant time.

    Raises:
        Refused: 401 when no secret is configured, or the signature is missing or wrong.
    """
    if not secret:
        raise unauthorized(f"no secret is configured, so {header} cannot be verified")
    if not sent:
        raise unauthorized(f"{header} is missing")
    expected = prefix + hmac_sha256(secret, body)
    if not hmac.compare_digest(expected.encode(), sent.strip().encode()):
        raise unauthorized(f"{header} does not match")


def sent_at(value: Any) -> datetime | None:
    """A moment a sender wrote in its body: ISO 8601, or seconds or milliseconds since
    the epoch; None when there is none or it cannot be read."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return None


def check_window(moment: datetime | None, what: str, now: datetime | None = None) -> None:
    """Refuse a body written longer ago than delivery records are kept.

    Within the window the body's record stops a replay; past it the record may be
    pruned, so the body's own timestamp has to.

    Raises:
        Refused: 400 for a body older than the window.
    """
    if moment is not None and (now or utcnow()) - moment > KEEP:
        hours = int(KEEP.total_seconds() // 3600)
        raise bad_request(f"{what} is older than the {hours}-hour delivery window")


def _headers(environ: Environ) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return headers


def _discard(stream: Any, length: int) -> None:
    """Read and drop a refused body, so the sender gets to read our 413.

    A sender still writing when the connection closes sees a broken pipe instead of
    the answer. Past a few megabytes we stop: closing is cheaper than listening.
    """
    if stream is None or length > DRAIN_LIMIT_BYTES:
        return
    while length > 0:
        chunk = stream.read(min(length, 64 * 1024))
        if not chunk:
            return
        length -= len(chunk)


def _read_body(environ: Environ) -> bytes:
    raw_length = str(environ.get("CONTENT_LENGTH") or "").strip()
    stream = environ.get("wsgi.input")
    if raw_length:
        if not raw_length.isdigit():
            raise bad_request("Content-Length is not a number")
        length = int(raw_length)
        if length > MAX_BODY_BYTES:
            _discard(stream, length)
            raise Refused(413, f"the body is over {MAX_BODY_BYTES} bytes")
        data = stream.read(length) if stream is not None and length else b""
    else:
        # No length (chunked): read one byte past the limit to know it was exceeded.
        data = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
    if len(data) > MAX_BODY_BYTES:
        raise Refused(413, f"the body is over {MAX_BODY_BYTES} bytes")
    return bytes(data)


def parse_json(delivery: Delivery) -> dict[str, Any]:
    """The body as a JSON object; form-encoded `payload=` bodies are accepted too.

    Raises:
        Refused: 400 when the body is not a JSON object.
    """
    body = delivery.body
    if delivery.header("content-type").startswith("application/x-www-form-urlencoded"):
        # GitHub's "application/x-www-form-urlencoded" content type: JSON in `payload`.
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=False)
        except UnicodeDecodeError:
            raise bad_request("the form body is not UTF-8") from None
        body = (form.get("payload") or [""])[0].encode()
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise bad_request("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise bad_request("the body is not a JSON object")
    return payload


def _answer(start_response: StartResponse, outcome: Outcome) -> Iterable[bytes]:
    data = json.dumps(outcome.payload).encode()
    status = f"{outcome.status} {REASONS.get(outcome.status, 'Unknown')}"
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


def endpoint(source: Source) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    """The WSGI handler for one source, for `WebApp.webhooks`."""

    def handle(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return _answer(start_response, respond(source, environ))

    return handle


def respond(source: Source, environ: Environ) -> Outcome:
    """Run one request through a source; never raises."""
    try:
        delivery = Delivery(body=_read_body(environ), headers=_headers(environ))
        source.verify(delivery)
        outcome = source.handle(delivery, parse_json(delivery))
    except Refused as exc:
        log.info("%s webhook refused (%s): %s", source.name, exc.status, exc.message)
        return Outcome(exc.status, {"error": exc.message})
    except LimitReached as exc:
        return Outcome(429, {"error": str(exc), "limit": exc.limit})
    except (Unavailable, OperationalError, RedisError) as exc:
        log.warning("%s webhook: backing service unavailable: %s", source.name, exc)
        return Outcome(503, {"error": "the database or queue is unavailable; deliver again"})
    except Exception:
        log.exception("%s webhook failed", source.name)
        return Outcome(500, {"error": "internal error; it has been logged"})
    log.info("%s webhook: %s", source.name, json.dumps(outcome.payload)[:300])
    return outcome
