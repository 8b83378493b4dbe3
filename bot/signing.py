"""Whether Slack signed a request: checked on the raw bytes, before anything is parsed.

Slack signs `v0:<timestamp>:<body>` with the app's signing secret and sends the
HMAC-SHA256 as `v0=<64 hex digits>`. slack_sdk's `SignatureVerifier` computes and
compares it, but raises rather than answers on headers Slack never sends (a timestamp
that is not a number, or too long for `int`; a signature that is not ASCII; a body
that is not UTF-8). So the
shape of both headers is checked first, and only well-formed ones reach the verifier.
"""

from __future__ import annotations

import re
import time
from typing import Any

from slack_sdk.signature import Clock, SignatureVerifier

# Seconds since the epoch, as Slack sends them: ASCII digits only (`int` also takes
# signs, spaces, underscores and other scripts' digits), and never past year 5000.
TIMESTAMP = re.compile(r"[0-9]{1,11}")
SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
# Slack's own window for a request's age, which Bolt and slack_sdk keep too.
MAX_AGE_SECONDS = 60 * 5


def _single(value: Any) -> str | None:
    """One header value (Bolt's request headers hold lists), or None."""
    if isinstance(value, list | tuple):
        return value[0] if len(value) == 1 and isinstance(value[0], str) else None
    return value if isinstance(value, str) else None


def signature_refusal(
    secret: str,
    body: bytes,
    *,
    timestamp: Any,
    signature: Any,
    now: float | None = None,
) -> str | None:
    """Why this request is not one Slack signed, or None when it is.

    Args:
        secret: The app's signing secret.
        body: The body exactly as received.
        timestamp: The `X-Slack-Request-Timestamp` header (a string or a list of one).
        signature: The `X-Slack-Signature` header (likewise).
        now: The current time, for tests; the clock's when None.

    Returns:
        A few words for a log line, naming what is wrong and never echoing it.
    """
    stamp = _single(timestamp)
    signed = _single(signature)
    if stamp is None or signed is None:
        return "no timestamp or signature"
    if not TIMESTAMP.fullmatch(stamp):
        return "the timestamp is not a number of seconds"
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > MAX_AGE_SECONDS:
        return "the timestamp is outside the five-minute window"
    if not SIGNATURE.fullmatch(signed):
        return "the signature is not of Slack's form"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    verifier = SignatureVerifier(secret, clock=_Fixed(current))
    if not verifier.is_valid(body=text, timestamp=stamp, signature=signed):
        return "the signature does not match"
    return None


class _Fixed(Clock):
    """The one moment a request is judged at, so both checks agree on its age."""

    def __init__(self, moment: float) -> None:
        self.moment = moment

    def now(self) -> float:
        return self.moment
