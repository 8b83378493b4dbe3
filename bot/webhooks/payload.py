"""Total readers for JSON bodies: any shape in, a value of the expected type out.

Webhook bodies are shaped by the sender and vary by version and configuration. Every
read goes through these functions, which answer an empty value instead of raising on
a missing key or an unexpected type, so parsing cannot fail with a KeyError or a
TypeError halfway through; the handlers then decide what is required.
"""

from __future__ import annotations

import re
from typing import Any

TEXT_LIMIT = 20_000
DIGITS = re.compile(r"^[0-9]{1,18}$")


def dig(data: Any, *path: str) -> Any:
    """The value at `path` in nested objects, or None when any step is missing."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def obj(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    """`value` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def storable(value: str) -> str:
    """A string PostgreSQL will store: no NUL characters, no lone surrogates.

    JSON may carry both (`"\\u0000"`, `"\\ud800"`); the database refuses them, and a
    sender's odd character must not turn into a server error.
    """
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def text(value: Any, limit: int = TEXT_LIMIT) -> str:
    """`value` if it is a string (cut to `limit`, made storable), else an empty string."""
    return storable(value[:limit]) if isinstance(value, str) else ""


def ident(value: Any) -> str:
    """An id that senders write as a string or a number, as a string ("" if neither)."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)[:200]
    return text(value, 200).strip()


def number(value: Any) -> int | None:
    """A whole number written as a number or a numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and DIGITS.match(value.strip()):
        return int(value.strip())
    return None


def words(value: Any) -> list[str]:
    """The strings of an array of strings, ignoring anything else in it."""
    return [text(item, 200) for item in items(value) if isinstance(item, str)]
