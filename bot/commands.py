"""Parsing the text after `/agent` into a command, without ever executing any of it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from jobs.exceptions import BadRequest
from jobs.states import TaskState
from jobs.tasks import parse_task_key

REPO_FLAG = re.compile(r"(?:^|\s)--repo(?:=|\s+)(\S+)")
MINE_FLAG = re.compile(r"(?:^|\s)--mine(?=\s|$)")

USAGE = """\
*Agentbot* — hand work to a coding agent, approve its plan, get a verified pull request.
• `/agent run <description> [--repo owner/name]` — start a task
• `/agent status T-12` — a task's card (only you see it)
• `/agent list [state] [--mine]` — recent tasks
• `/agent approve T-12 [comment]` · `/agent reject T-12 [reason]`
• `/agent retry T-12` · `/agent cancel T-12`
• `/agent aws status [account] [region] [service]` · `/agent aws cost [yesterday|week|month]` \
· `/agent aws optimize`
• `/agent help` — this message"""

SUBCOMMANDS = ("run", "status", "list", "approve", "reject", "retry", "cancel", "aws", "help")


@dataclass(frozen=True)
class Command:
    """A parsed `/agent` command."""

    name: str
    task_id: int | None = None
    text: str = ""
    repo: str | None = None
    state: TaskState | None = None
    mine: bool = False
    args: tuple[str, ...] = field(default_factory=tuple)


def _split_first(text: str) -> tuple[str, str]:
    parts = text.strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


def parse(text: str) -> Command:
    """Parse the text of an `/agent` slash command.

    Raises:
        BadRequest: With a short usage hint; nothing has been done.
    """
    # PostgreSQL cannot store NUL; Slack never sends it, but a forged body might.
    name, rest = _split_first((text or "").replace("\x00", ""))
    name = name.lower()
    if name in ("", "help", "-h", "--help"):
        return Command(name="help")
    if name not in SUBCOMMANDS:
        raise BadRequest(f"Unknown command `{name[:30]}`. Try `/agent help`.")
    if name == "run":
        repo = None
        match = REPO_FLAG.search(rest)
        if match:
            repo = match.group(1)
            rest = (rest[: match.start()] + " " + rest[match.end() :]).strip()
        if not rest.strip():
            raise BadRequest("Describe the work: `/agent run <description> [--repo owner/name]`.")
        return Command(name="run", text=rest.strip(), repo=repo)
    if name == "list":
        mine = bool(MINE_FLAG.search(rest))
        rest = MINE_FLAG.sub(" ", rest).strip()
        state = None
        if rest:
            try:
                state = TaskState(rest.lower().replace(" ", "_").replace("-", "_"))
            except ValueError:
                states = ", ".join(s.value for s in TaskState)
                raise BadRequest(f"Unknown state `{rest[:30]}`. States: {states}.") from None
        return Command(name="list", state=state, mine=mine)
    if name == "aws":
        return Command(name="aws", args=tuple(rest.split()))
    key, rest = _split_first(rest)
    if not key:
        raise BadRequest(f"Which task? `/agent {name} T-12`.")
    return Command(name=name, task_id=parse_task_key(key), text=rest.strip())
