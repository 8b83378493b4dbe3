"""Database URLs as SQLAlchemy wants them, without loading SQLAlchemy's ORM.

The settings check the URL in every process, the gunicorn master included, which
never opens a session; `jobs.db` (engine, sessions, migrations) loads the ORM.
"""

from __future__ import annotations


def normalize_url(url: str) -> str:
    """Pick the psycopg 3 driver for plain `postgresql://` URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
