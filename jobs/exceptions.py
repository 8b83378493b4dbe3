"""Domain errors. Each carries a short message fit to show a user as it is."""

from __future__ import annotations

UNAVAILABLE = "Agentbot could not reach its database or queue. Please try again in a moment."


class AgentbotError(Exception):
    """Base class: `str(error)` is a short, user-facing sentence."""


class BadRequest(AgentbotError):
    """The user's input cannot be understood; nothing was changed."""


class TaskNotFound(AgentbotError):
    """No task has the id the user typed."""

    def __init__(self, key: str) -> None:
        super().__init__(f"There is no task {key}.")
        self.key = key


class NotAllowed(AgentbotError):
    """The user may not do this; nothing was changed."""


class Conflict(AgentbotError):
    """The task is not in a state where this makes sense (it moved on)."""


class Unavailable(AgentbotError):
    """A backing service (database, Redis) did not answer; the user may try again."""

    def __init__(self, message: str = UNAVAILABLE) -> None:
        super().__init__(message)


class LimitReached(AgentbotError):
    """A configured limit (`[limits]`) refuses more work for now; nothing was changed."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


def first_line(error: BaseException) -> str:
    """The first line of an error's message, for a one-line message in a terminal or a log.

    A database error's own first line is its driver's (which names host and port,
    never the password); SQLAlchemy's wrapper adds lines of its own. A URL error's
    reason says what failed (refused, timed out) without the request around it.
    """
    cause = getattr(error, "orig", None) or getattr(error, "reason", None) or error
    lines = str(cause).strip().splitlines()
    if lines:
        return lines[0]
    return type(cause if isinstance(cause, BaseException) else error).__name__
