"""Git workspaces: one cached mirror per repo, one worktree per task.

Concurrent tasks on one repo share the mirror (guarded by a file lock while it is
fetched) but never a worktree: each task works on its own branch `agent/T-<n>`.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agents.base import AgentError, RepoSpec
from agents.env import child_environment

GIT_TIMEOUT_SECONDS = 300
AUTHOR = ("Agentbot", "agentbot@users.noreply.localhost")


@dataclass(frozen=True)
class DiffStat:
    """What a branch changed relative to its base."""

    files: list[str]
    added: int
    removed: int


def git(
    args: list[str], cwd: Path, *, env: Mapping[str, str] | None = None, check: bool = True
) -> str:
    """Run one git command and return its stdout.

    Raises:
        AgentError: When git fails, with its own message.
    """
    base = child_environment(
        allow=("SSH_AUTH_SOCK", "GIT_SSH_COMMAND"),
        extra={
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": AUTHOR[0],
            "GIT_AUTHOR_EMAIL": AUTHOR[1],
            "GIT_COMMITTER_NAME": AUTHOR[0],
            "GIT_COMMITTER_EMAIL": AUTHOR[1],
        },
    )
    base.update(env or {})
    completed = subprocess.run(
        # The repository's hooks are code an agent could have written; never run them.
        ["git", "-c", "core.hooksPath=/dev/null", *args],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_SECONDS,
        stdin=subprocess.DEVNULL,
    )
    if check and completed.returncode != 0:
        message = (completed.stderr or completed.stdout).strip().splitlines()
        raise AgentError(f"git {args[0]} failed: {message[-1] if message else 'no output'}")
    return completed.stdout


# Caches that running tests leaves behind; `commit_all` must never pick them up, even in
# a repository whose .gitignore forgot them.
CACHE_PATTERNS = (
    "__pycache__/",
    "*.py[cod]",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".coverage",
    ".tox/",
    "node_modules/",
    ".DS_Store",
)


def _exclude_caches(mirror: Path) -> None:
    """List the caches in the mirror's info/exclude, which every worktree of it reads."""
    exclude = mirror / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    present = exclude.read_text().splitlines() if exclude.exists() else []
    missing = [pattern for pattern in CACHE_PATTERNS if pattern not in present]
    if missing:
        with exclude.open("a") as handle:
            handle.write("\n".join(["# Agentbot: never commit caches", *missing]) + "\n")


class Workspaces:
    """Creates and removes per-task worktrees under one root directory."""

    def __init__(self, root: Path, git_env: Mapping[str, str] | None = None) -> None:
        self.root = root.resolve()
        # Credentials for git only (an askpass helper, say); never given to agents.
        self.git_env = dict(git_env or {})

    def _mirror_path(self, repo: RepoSpec) -> Path:
        digest = hashlib.sha256(repo.git_url.encode()).hexdigest()[:10]
        slug = re.sub(r"[^A-Za-z0-9_.-]", "_", repo.name)
        return self.root / "mirrors" / f"{slug}-{digest}.git"

    def worktree_path(self, repo: RepoSpec, task_key: str) -> Path:
        """Where the task's worktree lives."""
        slug = re.sub(r"[^A-Za-z0-9_.-]", "_", repo.name)
        return self.root / "worktrees" / slug / task_key

    @staticmethod
    def branch(task_key: str) -> str:
        """The branch a task's work goes on."""
        return f"agent/{task_key}"

    @contextmanager
    def _locked(self, mirror: Path) -> Iterator[None]:
        mirror.parent.mkdir(parents=True, exist_ok=True)
        with open(mirror.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def prepare(self, repo: RepoSpec, task_key: str) -> Path:
        """Return the task's worktree, creating mirror, branch and worktree as needed.

        A retried task gets its existing worktree back, with the work done so far.
        """
        mirror = self._mirror_path(repo)
        path = self.worktree_path(repo, task_key)
        branch = self.branch(task_key)
        with self._locked(mirror):
            if not mirror.exists():
                git(
                    ["clone", "--bare", "--quiet", repo.git_url, str(mirror)],
                    self.root,
                    env=self.git_env,
                )
                # Remote branches under refs/remotes, so fetching never touches the
                # local agent/T-<n> branches that worktrees have checked out.
                git(
                    ["config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"], mirror
                )
            git(["fetch", "--prune", "--quiet", "origin"], mirror, env=self.git_env)
            _exclude_caches(mirror)
            if path.exists() and (path / ".git").exists():
                return path
            git(["worktree", "prune"], mirror)
            path.parent.mkdir(parents=True, exist_ok=True)
            has_branch = git(["branch", "--list", branch], mirror).strip() != ""
            if has_branch:
                git(["worktree", "add", "--quiet", str(path), branch], mirror)
            else:
                git(
                    [
                        "worktree",
                        "add",
                        "--quiet",
                        "-b",
                        branch,
                        str(path),
                        f"origin/{repo.default_branch}",
                    ],
                    mirror,
                )
        return path

    def remove(self, repo: RepoSpec, task_key: str) -> None:
        """Drop a task's worktree (its branch stays in the mirror and the remote)."""
        mirror = self._mirror_path(repo)
        path = self.worktree_path(repo, task_key)
        with self._locked(mirror):
            if mirror.exists():
                git(["worktree", "remove", "--force", str(path)], mirror, check=False)
            shutil.rmtree(path, ignore_errors=True)

    def commit_all(self, path: Path, message: str) -> str | None:
        """Commit every change in the worktree; returns the new commit id, or None."""
        git(["add", "--all"], path)
        if not git(["status", "--porcelain"], path).strip():
            return None
        git(["commit", "--quiet", "--no-verify", "-m", message], path)
        return git(["rev-parse", "HEAD"], path).strip()

    def push(self, path: Path, task_key: str) -> None:
        """Push the task's branch to the repo's remote."""
        branch = self.branch(task_key)
        git(
            [
                "push",
                "--quiet",
                "--no-verify",
                "--force",
                "origin",
                f"{branch}:refs/heads/{branch}",
            ],
            path,
            env=self.git_env,
        )

    def diff_stat(self, path: Path, base: str) -> DiffStat:
        """Files and lines the branch changed since `base`."""
        output = git(["diff", "--numstat", f"{base}...HEAD"], path)
        files, added, removed = [], 0, 0
        for line in output.splitlines():
            plus, minus, name = line.split("\t", 2)
            files.append(name)
            added += int(plus) if plus.isdigit() else 0
            removed += int(minus) if minus.isdigit() else 0
        return DiffStat(files=files, added=added, removed=removed)


_SCOPE_SKIP = {"src", "lib", "app", "pkg", "internal", "tests", "test", "spec", "__tests__"}


def commit_scope(files: Sequence[str]) -> str | None:
    """The conventional-commit scope for a change: its main module, in a word.

    The first production (non-test) file decides: its first meaningful directory, or
    its name without extension (`src/auth/session.py` -> `auth`, `pricing.py` ->
    `pricing`).
    """
    production = [f for f in files if not _is_test_path(f)] or list(files)
    for name in production:
        parts = [p for p in PurePosixPath(name).parts if p not in ("/", ".", "..")]
        if not parts:
            continue
        directories = [p for p in parts[:-1] if p.lower() not in _SCOPE_SKIP]
        word = directories[0] if directories else PurePosixPath(parts[-1]).stem
        scope = re.sub(r"[^a-z0-9_-]+", "-", word.lower()).strip("-")
        if scope:
            return scope[:30]
    return None


def _is_test_path(name: str) -> bool:
    lowered = name.lower()
    stem = PurePosixPath(lowered).name
    return (
        any(part in ("tests", "test", "spec", "__tests__") for part in PurePosixPath(lowered).parts)
        or stem.startswith("test_")
        or ".test." in stem
        or ".spec." in stem
        or stem.endswith("_test.py")
    )


def conventional_subject(kind: str, scope: str | None, summary: str, limit: int = 72) -> str:
    """`fix(scope): summary`, one line, at most `limit` characters."""
    head = f"{kind}({scope}): " if scope else f"{kind}: "
    line = " ".join(summary.split()) or "changes"
    line = line[0].lower() + line[1:] if line[:2].istitle() and not line[:2].isupper() else line
    room = limit - len(head)
    if len(line) > room:
        cut = line[: room + 1]
        line = cut[: cut.rfind(" ")] if " " in cut else line[:room]
    return head + line.rstrip(" .,;:")
