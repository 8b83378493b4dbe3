"""How the lifecycle tells people what happened, without knowing Slack."""

from __future__ import annotations

from typing import Protocol


class Notifier(Protocol):
    """Makes the chat reflect a task; implemented by the Slack side."""

    def sync(self, task_id: int) -> None:
        """Bring the task's status card and thread up to date with the database."""

    def progress(self, task_id: int, line: str) -> None:
        """Show one short progress line for a running agent (edited in place)."""

    def say(self, task_id: int, text: str) -> None:
        """Post a plain message in the task's thread."""


class NullNotifier:
    """A notifier that tells nobody (for tools and tests that only need the database)."""

    def sync(self, task_id: int) -> None:
        """Do nothing."""

    def progress(self, task_id: int, line: str) -> None:
        """Do nothing."""

    def say(self, task_id: int, text: str) -> None:
        """Do nothing."""
