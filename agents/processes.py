"""Child processes in their own process groups, findable by whoever must kill them.

Agents and test commands run in a process group of their own, so a timeout can kill
the whole tree (the agent's shells, their test runners) without killing us. The group
ids are also written under a per-parent directory, so the worker that supervises this
process can kill them when it is told to stop the job.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def registry_dir(parent_pid: int) -> Path:
    """Where the process groups started by `parent_pid` are listed."""
    return Path(tempfile.gettempdir()) / "agentbot-children" / str(parent_pid)


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) for every process we can see in /proc."""
    table: dict[int, tuple[int, int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return table
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may itself contain spaces or ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3:
            table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def descendants_of_group(pgid: int) -> set[int]:
    """The group's members and every process they started, wherever those now live.

    Coding agents start their shell commands in sessions of their own (so a command
    can be interrupted on its own); killing the agent's group alone would orphan them.
    """
    table = _process_table()
    found = {pid for pid, (_, group) in table.items() if group == pgid}
    frontier = set(found)
    while frontier:
        frontier = {pid for pid, (parent, _) in table.items() if parent in frontier} - found
        found |= frontier
    return found


def kill_group(pgid: int) -> None:
    """SIGKILL a process group and everything its members started; gone ones are fine."""
    # Freeze first, so nothing forks between finding the tree and killing it.
    tree = descendants_of_group(pgid)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGSTOP)
    tree |= descendants_of_group(pgid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def kill_children_of(parent_pid: int) -> list[int]:
    """Kill every registered process group of `parent_pid`; returns the group ids."""
    directory = registry_dir(parent_pid)
    killed = []
    if directory.is_dir():
        for entry in directory.iterdir():
            if entry.name.isdigit():
                kill_group(int(entry.name))
                killed.append(int(entry.name))
            entry.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            directory.rmdir()
    return killed


@contextlib.contextmanager
def group_process(args: list[str], **popen: Any) -> Iterator[subprocess.Popen[str]]:
    """Start a process in a new group; on leaving, kill whatever of the group remains."""
    process: subprocess.Popen[str] = subprocess.Popen(args, start_new_session=True, **popen)
    marker = registry_dir(os.getpid()) / str(process.pid)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        marker = Path()
    try:
        yield process
    finally:
        kill_group(process.pid)
        if process.poll() is None:
            process.wait()
        if marker.name:
            marker.unlink(missing_ok=True)
