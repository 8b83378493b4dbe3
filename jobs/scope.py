"""Stay in scope: which changed files the approved plan did not name.

An approval is of a plan, and the plan names its affected files. Before anything is
pushed, the branch's changed files are compared with them: the ones outside are listed
on the completion card (`[agent] scope = "warn"`), or nothing is pushed and the task
fails naming them (`"refuse"`). A message in the thread cannot widen this: the plan
alone decides.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence


def covers(entry: str, path: str) -> bool:
    """Whether one affected-files entry of a plan covers `path`.

    An entry covers the file it names, everything under it when it names a directory
    (`src/` or `src`), and what it matches when it is a glob (`tests/test_*.py`).
    """
    entry = entry.strip().removeprefix("./")
    if not entry:
        return False
    if path == entry.rstrip("/") or path.startswith(entry.rstrip("/") + "/"):
        return True
    return any(ch in entry for ch in "*?[") and fnmatch.fnmatchcase(path, entry)


def outside_plan(changed: Iterable[str], affected: Sequence[str]) -> list[str]:
    """The changed files no entry of the plan's affected files covers, in order."""
    return [path for path in changed if not any(covers(entry, path) for entry in affected)]


def refusal(paths: Sequence[str]) -> str:
    """Why nothing was pushed, naming the files outside the plan."""
    names = ", ".join(f"`{p}`" for p in paths[:10])
    more = f" and {len(paths) - 10} more" if len(paths) > 10 else ""
    return (
        f"The change touches files the approved plan does not name: {names}{more}. "
        'With [agent] scope = "refuse", nothing was pushed.'
    )
