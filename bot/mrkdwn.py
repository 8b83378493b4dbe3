"""Slack's text escaping, apart from the Block Kit builders.

The log redactor looks for secrets in their escaped form too, and is set up in every
process, the gunicorn master included; `bot.blocks` loads the ORM models with it.
"""

from __future__ import annotations


def escape(text: str) -> str:
    """Escape Slack's control characters so user text cannot ping or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
