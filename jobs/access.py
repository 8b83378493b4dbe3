"""Who may request work and who may approve it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from jobs.config import EVERYONE, AccessConfig

# Looks up the members of a Slack user group (`S…`); empty when unknown.
GroupMembers = Callable[[str], frozenset[str]]


def _no_groups(_group_id: str) -> frozenset[str]:
    return frozenset()


class AccessPolicy:
    """Answers authorization questions from configuration and user-group membership."""

    def __init__(self, config: AccessConfig, group_members: GroupMembers = _no_groups) -> None:
        self.config = config
        self.group_members = group_members

    def _listed(self, user_id: str, entries: Iterable[str]) -> bool:
        for entry in entries:
            if entry in (EVERYONE, user_id):
                return True
            if entry.startswith("S") and user_id in self.group_members(entry):
                return True
        return False

    def may_request(self, user_id: str) -> bool:
        """Whether the user may start tasks."""
        return self._listed(user_id, self.config.requesters)

    def is_approver(self, user_id: str) -> bool:
        """Whether the user is an approver at all."""
        return self._listed(user_id, self.config.approvers)

    def approval_refusal(self, user_id: str, requester: str) -> str | None:
        """Why the user may not approve or reject this requester's task, or None."""
        if not self.is_approver(user_id):
            return "Only approvers can approve or reject plans."
        if user_id == requester and not self.config.allow_self_approval:
            return "You requested this task, so someone else has to approve it."
        return None

    def may_cancel(self, user_id: str, requester: str) -> bool:
        """Requesters may stop their own tasks; approvers may stop any."""
        return user_id == requester or self.is_approver(user_id)
