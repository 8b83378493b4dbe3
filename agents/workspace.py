"""Git workspaces: one cached mirror per repo, one worktree per task.

Concurrent tasks on one repo share the mirror (guarded by a file lock while it is
fetched) but never a worktree: each task works on its own branch `agent/T-<n>`.

The executor agent can run commands, so everything a worktree reaches — the mirror's
configuration, refs and hooks — may have been written by an agent. Git commands that
talk to the remote (and may carry the GitHub token) therefore never read it: they run
in a scratch repository created for that one command, whose only configuration is
ours, borrowing the mirror's object store, against the configured URL itself rather
than a remote name. The token goes to HTTPS transports only.
"""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agents.base import AgentError, RepoSpec
from agents.env import child_environment

GIT_TIMEOUT_SECONDS = 300
AUTHOR = ("Agentbot", "agentbot@users.noreply.localhost")
# On every git command the bot runs: the repository's hooks and file-system monitor are
# programs an agent could have written, so they never run; nor does a `gpg.program` an
# agent planted, since the bot's commits and tags are never signed and logs never verify.
SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "log.showSignature=false",
)
# Remote URLs by transport; anything else (`ext::`, other remote helpers) is refused.
_URL_SCHEMES = {
    "https": "https",
    "http": "http",
    "ssh": "ssh",
    "git+ssh": "ssh",
    "ssh+git": "ssh",
    "git": "git",
    "file": "file",
}
_SCP_LIKE = re.compile(r"^[^/]+:")


@dataclass(frozen=True)
class DiffStat:
    """What a branch changed relative to its base."""

    files: list[str]
    added: int
    removed: int


def git(
    args: list[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    config: Sequence[str] = (),
    stdin: str | None = None,
) -> str:
    """Run one git command and return its stdout.

    Git reads no global or system configuration here (the bot's own `~/.gitconfig`
    is no business of a task's repository), and never runs the repository's hooks.

    Args:
        args: The git subcommand and its arguments.
        cwd: Where to run it.
        env: Variables added to git's environment.
        check: Raise when git fails.
        config: `key=value` settings passed with `-c`, which win over any file.
        stdin: Text fed to git's standard input.

    Raises:
        AgentError: When git fails, with its own message.
    """
    base = child_environment(
        # The operator's ssh agent, proxy and certificate authorities: the bot's own
        # environment, which no agent can change.
        allow=(
            "SSH_AUTH_SOCK",
            "GIT_SSH_COMMAND",
            "GIT_SSL_CAINFO",
            "GIT_SSL_CAPATH",
            "HTTPS_PROXY",
            "https_proxy",
            "NO_PROXY",
            "no_proxy",
        ),
        extra={
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": AUTHOR[0],
            "GIT_AUTHOR_EMAIL": AUTHOR[1],
            "GIT_COMMITTER_NAME": AUTHOR[0],
            "GIT_COMMITTER_EMAIL": AUTHOR[1],
        },
    )
    base.update(env or {})
    settings = [item for entry in (*SAFE_CONFIG, *config) for item in ("-c", entry)]
    completed = subprocess.run(
        ["git", *settings, *args],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_SECONDS,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
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


# The caches that stay when the committed tree is tested: data the tools read, never
# code that could run in place of the committed source. Bytecode can (an unchecked .pyc
# is imported whatever the .py says), and so can installed packages (`node_modules/`,
# `.tox/`), which the test command must then install itself, as in a fresh worktree.
INERT_CACHES = (".pytest_cache/", ".mypy_cache/", ".ruff_cache/", ".coverage", ".DS_Store")


def clean_worktree(path: Path, keep: Sequence[str] = CACHE_PATTERNS) -> list[str]:
    """Remove every untracked file from the worktree, ignored ones included.

    -x: files the repo's .gitignore hides go too (an agent can write a .gitignore);
    only the caches matching `keep` stay.

    Args:
        path: The worktree.
        keep: Patterns (gitignore syntax) of the caches that stay.

    Returns:
        The paths removed, as git names them (directories end with `/`).

    Raises:
        AgentError: When git fails.
    """
    excludes = [f"--exclude={pattern}" for pattern in keep]
    output = git(["clean", "-ffdx", *excludes], path)
    prefix = "Removing "
    return [line[len(prefix) :] for line in output.splitlines() if line.startswith(prefix)]


def _exclude_caches(mirror: Path) -> None:
    """List the caches in the mirror's info/exclude, which every worktree of it reads."""
    exclude = mirror / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    present = exclude.read_text().splitlines() if exclude.exists() else []
    missing = [pattern for pattern in CACHE_PATTERNS if pattern not in present]
    if missing:
        with exclude.open("a") as handle:
            handle.write("\n".join(["# Agentbot: never commit caches", *missing]) + "\n")


def transport_of(url: str) -> str:
    """The git transport a remote URL uses: https, http, ssh, git or file.

    Raises:
        AgentError: For a URL git would hand to anything else (`ext::`, a remote
            helper), or one that could be read as an option.
    """
    if url.startswith("-") or "::" in url.split("/", 1)[0]:
        raise AgentError(f"The repository URL {url!r} is not one Agentbot pushes to.")
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        if scheme not in _URL_SCHEMES:
            raise AgentError(f"The repository URL scheme {scheme!r} is not supported.")
        return _URL_SCHEMES[scheme]
    # `user@host:path` is ssh; a path (`/srv/repo.git`, `./repo`) is local.
    return "ssh" if _SCP_LIKE.match(url) else "file"


def transport_config(transport: str) -> tuple[str, ...]:
    """Settings for a command that talks to a remote over `transport`, and nothing else.

    Only that transport is allowed (no `ext::`, no local path behind an HTTPS URL);
    ssh is plain `ssh` (an operator's GIT_SSH_COMMAND still wins, being the bot's own);
    and a fetch never starts housekeeping in the borrowed object store.
    """
    entries = [
        "protocol.allow=never",
        f"protocol.{transport}.allow=always",
        "gc.auto=0",
        "maintenance.auto=false",
        "fetch.writeCommitGraph=false",
        "fetch.recurseSubmodules=false",
        "push.recurseSubmodules=no",
    ]
    if transport == "ssh":
        entries.append("core.sshCommand=ssh")
    return tuple(entries)


@dataclass(frozen=True)
class _Transport:
    """A scratch repository for one command that talks to the remote."""

    directory: Path
    env: dict[str, str]
    config: tuple[str, ...]

    def run(self, args: list[str], *, stdin: str | None = None) -> str:
        return git(args, self.directory, env=self.env, config=self.config, stdin=stdin)


def _refs(where: Path, prefix: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Ref name -> commit id, for the refs under `prefix`."""
    output = git(["for-each-ref", "--format=%(refname) %(objectname)", prefix], where, env=env)
    return dict(line.split(" ", 1) for line in output.splitlines() if " " in line)


class Workspaces:
    """Creates and removes per-task worktrees under one root directory."""

    def __init__(self, root: Path, git_env: Mapping[str, str] | None = None) -> None:
        self.root = root.resolve()
        # Credentials for git only (an askpass helper, say); never given to agents, and
        # given to git only for an HTTPS remote.
        self.git_env = dict(git_env or {})
        # Which repo each prepared worktree belongs to: pushes go to its configured URL,
        # never to one read from the (agent-writable) repository.
        self._repos: dict[Path, RepoSpec] = {}

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

    @contextmanager
    def _transport(self, mirror: Path, url: str) -> Iterator[_Transport]:
        """A fresh repository whose configuration is only ours, using the mirror's objects.

        Nothing in it was ever within an agent's reach, so no configuration an agent
        planted (ssh command, receive-pack, proxy, URL rewrite, credential helper, hook)
        takes part in a command that may carry the token.
        """
        transport = transport_of(url)
        scratch = Path(tempfile.mkdtemp(prefix="agentbot-git-"))
        try:
            directory = scratch / "transport.git"
            git(["init", "--bare", "--quiet", "--template=", str(directory)], scratch)
            env = {"GIT_DIR": str(directory), "GIT_OBJECT_DIRECTORY": str(mirror / "objects")}
            if transport == "https":
                env.update(self.git_env)
            yield _Transport(directory, env, transport_config(transport))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _fetch(self, mirror: Path, url: str) -> None:
        """Bring the mirror's `refs/remotes/origin/*` up to date with the remote's branches."""
        known = _refs(mirror, "refs/remotes/origin/")
        with self._transport(mirror, url) as transport:
            if known:
                # What the mirror already has, so the remote sends only what is new.
                transport.run(
                    ["update-ref", "--stdin"],
                    stdin="".join(f"update {ref} {sha}\n" for ref, sha in known.items()),
                )
            transport.run(
                [
                    "fetch",
                    "--quiet",
                    "--prune",
                    "--no-tags",
                    "--no-auto-gc",
                    "--no-write-fetch-head",
                    "--",
                    url,
                    "+refs/heads/*:refs/remotes/origin/*",
                ]
            )
            fetched = _refs(transport.directory, "refs/remotes/origin/", transport.env)
        updates = [f"update {ref} {sha}\n" for ref, sha in fetched.items() if known.get(ref) != sha]
        deletes = [f"delete {ref}\n" for ref in known if ref not in fetched]
        if updates or deletes:
            git(["update-ref", "--stdin"], mirror, stdin="".join(updates + deletes))

    def prepare(self, repo: RepoSpec, task_key: str) -> Path:
        """Return the task's worktree, creating mirror, branch and worktree as needed.

        A task prepared again (a retry) gets its worktree back as its branch was last
        pushed: whatever a failed attempt left uncommitted, or committed without
        pushing, is gone, so the new attempt starts where the last good one ended.
        Caches listed in `CACHE_PATTERNS` stay.
        """
        mirror = self._mirror_path(repo)
        path = self.worktree_path(repo, task_key)
        branch = self.branch(task_key)
        with self._locked(mirror):
            if not mirror.exists():
                git(["init", "--bare", "--quiet", str(mirror)], self.root)
            self._fetch(mirror, repo.git_url)
            _exclude_caches(mirror)
            if path.exists() and (path / ".git").exists():
                self._restore(mirror, path, branch)
            else:
                git(["worktree", "prune"], mirror)
                path.parent.mkdir(parents=True, exist_ok=True)
                if git(["branch", "--list", branch], mirror).strip():
                    git(["worktree", "add", "--quiet", str(path), branch], mirror)
                    self._restore(mirror, path, branch)
                else:
                    start = f"refs/remotes/origin/{repo.default_branch}"
                    git(
                        [
                            "worktree",
                            "add",
                            "--quiet",
                            "--no-track",
                            "-b",
                            branch,
                            str(path),
                            start,
                        ],
                        mirror,
                    )
        self._repos[path.resolve()] = repo
        return path

    @staticmethod
    def _restore(mirror: Path, path: Path, branch: str) -> None:
        """Put the worktree back on its branch as last pushed (as committed, if never)."""
        pushed = f"refs/remotes/origin/{branch}"
        exists = git(["rev-parse", "--verify", "--quiet", pushed], mirror, check=False).strip()
        target = pushed if exists else f"refs/heads/{branch}"
        git(["checkout", "--force", "--quiet", "--no-track", "-B", branch, target], path)
        clean_worktree(path)

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
        """Push the task's branch to its repo's configured URL.

        Raises:
            AgentError: When the worktree was not prepared by this object, or git fails.
        """
        repo = self._repos.get(path.resolve())
        if repo is None:
            raise AgentError(f"{task_key}'s workspace was not prepared; nothing was pushed.")
        mirror = self._mirror_path(repo)
        branch = self.branch(task_key)
        commit = git(["rev-parse", "--verify", f"refs/heads/{branch}^{{commit}}"], mirror).strip()
        with self._transport(mirror, repo.git_url) as transport:
            transport.run(
                [
                    "push",
                    "--quiet",
                    "--no-verify",
                    "--force",
                    "--no-recurse-submodules",
                    "--",
                    repo.git_url,
                    f"{commit}:refs/heads/{branch}",
                ]
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
    production = [f for f in files if not is_test_path(f)] or list(files)
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


_JS_EXTENSIONS = ("js", "jsx", "mjs", "cjs", "ts", "tsx", "mts", "cts")

# What counts as test code, by ecosystem: (ecosystem, file name pattern, directory the
# file must lie under or None for anywhere). Names follow each runner's own defaults,
# so a production module that merely mentions "test" or "spec" is not a test.
TEST_FILE_RULES: tuple[tuple[str, str, str | None], ...] = (
    # Test directories: pytest's and unittest's tests/, mocha's test/, Rust's tests/,
    # Maven and Gradle's src/test/; fixtures and helpers in them are test support.
    ("any", "*", "tests"),
    ("any", "*", "test"),
    ("Python", "test_*.py", None),
    ("Python", "*_test.py", None),
    ("Python", "conftest.py", None),
    ("Python", "tests.py", None),  # Django's per-app test module
    *(("JS/TS", f"*.{kind}.{ext}", None) for kind in ("test", "spec") for ext in _JS_EXTENSIONS),
    ("JS/TS", "*", "__tests__"),
    ("Go", "*_test.go", None),
    ("Go", "*", "testdata"),
    ("Ruby", "*_spec.rb", "spec"),
    ("Ruby", "spec_helper.rb", "spec"),
    ("Ruby", "rails_helper.rb", "spec"),
    ("Ruby", "*", "spec/support"),
)


def is_test_path(name: str) -> bool:
    """Whether a repository path is test code or test support, by `TEST_FILE_RULES`.

    Matching ignores case. A directory rule matches the path's directories anywhere
    (`tests` matches `tests/x.py` and `pkg/tests/x.py`), so `spec/openapi.yaml` or
    `src/ab_testing.py` are production files, while `spec/cart_spec.rb` is a test.
    """
    path = PurePosixPath(name.lower())
    directories = "/" + "/".join(path.parts[:-1]) + "/"
    return any(
        fnmatch.fnmatchcase(path.name, pattern) and (under is None or f"/{under}/" in directories)
        for _ecosystem, pattern, under in TEST_FILE_RULES
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
