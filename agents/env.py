"""The environment a child process (coding agent, test command) is allowed to see.

This module is the one place besides the settings that reads `os.environ`: it must,
to copy the few variables a child needs. Everything else — Slack tokens, database and
Redis URLs, the GitHub token, webhook secrets, AWS credentials — stays in the bot.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

BASE_ALLOWLIST = (
    "HOME",
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TERM",
    "TMPDIR",
    "TZ",
    "USER",
    "LOGNAME",
    "SHELL",
)

# Names that must never reach a child, even if an allowlist or prefix admits them.
DENYLIST_MARKERS = (
    "SLACK_",
    "DATABASE_URL",
    "REDIS_URL",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GITHUB_WEBHOOK_SECRET",
    "SENTRY_CLIENT_SECRET",
    "JIRA_WEBHOOK_SECRET",
    "AWS_",
    "AGENTBOT_",
)


@dataclass(frozen=True)
class CarriedEnvironment:
    """What the configuration lets a child carry beyond the base allowlist.

    Attributes:
        names: Variables copied from the worker's environment when set there.
        values: Fixed values, set whatever the worker's environment says.
    """

    names: tuple[str, ...] = ()
    values: Mapping[str, str] = field(default_factory=dict)


def child_environment(
    allow: Iterable[str] = (),
    allow_prefixes: Iterable[str] = (),
    extra: Mapping[str, str] | None = None,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Build a child's environment from an allowlist.

    Args:
        allow: Variable names to copy besides the base set.
        allow_prefixes: Prefixes whose variables are copied (e.g. `CLAUDE_CODE_`).
        extra: Values to set explicitly (they win over copied ones).
        source: Where to copy from; the process environment by default.

    Returns:
        A fresh mapping with no bot secret in it.
    """
    source = os.environ if source is None else source
    names = set(BASE_ALLOWLIST) | set(allow)
    prefixes = tuple(allow_prefixes)
    env = {
        name: value
        for name, value in source.items()
        if (name in names or (prefixes and name.startswith(prefixes))) and not is_denied(name)
    }
    env.update(extra or {})
    return env


def is_denied(name: str) -> bool:
    """Whether a variable is one of the bot's own secrets or service addresses."""
    return any(name.startswith(marker) or name == marker for marker in DENYLIST_MARKERS)


def secret_leaks(carried: CarriedEnvironment, secrets: Iterable[str]) -> list[str]:
    """The carried variables whose value holds one of `secrets` (names, never values).

    Fixed values are checked as configured; passed-through names as the worker's
    environment has them now.
    """
    kept = [secret for secret in secrets if secret]
    copied = child_environment(allow=carried.names)
    candidates = {
        **{name: copied[name] for name in carried.names if name in copied},
        **carried.values,
    }
    return sorted(
        name for name, value in candidates.items() if any(secret in value for secret in kept)
    )


def bot_environment() -> Mapping[str, str]:
    """The bot's own environment, where `env:NAME` references are looked up."""
    return os.environ
