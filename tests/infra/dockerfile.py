"""Read a Dockerfile into stages and instructions (enough of the syntax for ours)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Instruction:
    """One instruction: its keyword and the rest of its (joined) line."""

    keyword: str
    value: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD, if it is one."""
        text = self.value
        if self.keyword == "HEALTHCHECK":
            text = text.split(" CMD ", 1)[1] if " CMD " in text else ""
        text = text.strip()
        if not text.startswith("["):
            return None
        parsed: list[str] = json.loads(text)
        return parsed


@dataclass
class Stage:
    """A FROM and what follows it."""

    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        """Every instruction with `keyword`."""
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """Variables set by ENV in this stage."""
        found: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for pair in shlex.split(instruction.value):
                name, _, value = pair.partition("=")
                found[name] = value
        return found


@dataclass
class Dockerfile:
    """Global ARGs and the stages, in order."""

    args: dict[str, str]
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        """The stage called `name`."""
        return next(s for s in self.stages if s.name == name)

    def expand(self, text: str, extra: dict[str, str] | None = None) -> str:
        """`text` with ${ARG} references replaced by their defaults."""
        values = {**self.args, **(extra or {})}
        return re.sub(r"\$\{(\w+)\}", lambda m: values.get(m[1], m[0]), text)


def logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined and comments dropped."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1].rstrip() + " "
            continue
        current += stripped
        if current:
            lines.append(current)
        current = ""
    return lines


def parse(path: Path) -> Dockerfile:
    """Parse a Dockerfile."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(path.read_text()):
        keyword, _, value = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = value.split()
            name = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
        elif not stages and keyword == "ARG":
            name, _, default = value.partition("=")
            args[name] = default
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, value.strip()))
    return Dockerfile(args=args, stages=stages)


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore `patterns` (last match wins, ! re-includes) exclude `path`."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        bare = pattern[1:] if negate else pattern
        bare = bare.rstrip("/")
        candidates = [path, *(str(p) for p in Path(path).parents if str(p) != ".")]
        if any(fnmatch.fnmatch(c, bare) for c in candidates):
            result = not negate
    return result


def dockerignore(path: Path) -> list[str]:
    """The patterns of a .dockerignore file."""
    return [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
