"""Process lookups read straight from /proc, independent of the code under test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def proc_stats() -> Iterator[tuple[int, list[str]]]:
    """Each visible process's pid and the fields of its /proc stat after the command name.

    The fields start with the state, then the parent pid, then the process group.
    """
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        # The command name may hold spaces or ")"; fields after its last ")" do not.
        yield int(entry.name), stat[stat.rfind(")") + 2 :].split()


def children_of(pid: int) -> list[int]:
    """Direct children of a process."""
    return [child for child, fields in proc_stats() if int(fields[1]) == pid]


def live_members(pgid: int) -> list[int]:
    """Processes still in the group (zombies waiting to be reaped do not count)."""
    return [
        member for member, fields in proc_stats() if int(fields[2]) == pgid and fields[0] != "Z"
    ]
