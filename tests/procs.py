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


def sandboxed(ns_pid: int, cwd: Path) -> list[int]:
    """Host pids of live processes known as `ns_pid` inside a PID namespace, working in `cwd`.

    A sandboxed command sees only its own namespace's pids (`echo $$` writes those), so
    a test finds the process behind such a pid by its innermost pid and its directory.
    """
    found = []
    for pid, fields in proc_stats():
        if fields[0] == "Z":
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            here = Path(f"/proc/{pid}/cwd").resolve()
        except OSError:
            continue
        nspids = next(
            (line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), []
        )
        if len(nspids) > 1 and int(nspids[-1]) == ns_pid and here == cwd.resolve():
            found.append(pid)
    return found
