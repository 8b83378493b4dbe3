"""Running a repo's test command and reading what it says, without trusting anyone."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agents.env import CarriedEnvironment, child_environment
from agents.processes import group_process, kill_group
from agents.runner import private_home
from agents.sandbox import Sandbox
from agents.test_counts import parse_counts
from agents.workspace import git, is_test_path

OUTPUT_TAIL = 3000


@dataclass(frozen=True)
class TestRun:
    """One run of the test command, as the bot saw it."""

    command: str
    exit_code: int
    passed: int
    failed: int
    errors: int
    duration_seconds: float
    output_tail: str
    timed_out: bool = False

    @property
    def green(self) -> bool:
        """The whole suite passed, and it had tests in it: a run of nothing is not green."""
        return (
            self.exit_code == 0
            and self.passed > 0
            and self.failed == 0
            and self.errors == 0
            and not self.timed_out
        )

    @property
    def ran(self) -> int:
        """How many tests the run reached: passing, failing or erroring."""
        return self.passed + self.failed + self.errors

    @property
    def red(self) -> bool:
        """Tests ran and at least one failed (not a crash of the runner itself)."""
        return not self.timed_out and self.exit_code != 0 and (self.failed > 0 or self.errors > 0)

    def counts(self) -> str:
        """`3 passed, 1 failed` — the line people read."""
        text = f"{self.passed} passed, {self.failed} failed"
        if self.errors:
            text += f", {self.errors} errors"
        if self.timed_out:
            text += " (timed out)"
        return text


@contextmanager
def command_home(home: str | None) -> Iterator[str]:
    """The HOME a repository's own commands run with; never the bot's.

    Args:
        home: The agent's private home (the one its CLI gets), created 0700 if missing;
            None for a throwaway empty directory, removed afterwards.

    Yields:
        The directory's absolute path.
    """
    if home is not None:
        yield private_home(home)
        return
    with tempfile.TemporaryDirectory(prefix="agentbot-home-") as scratch:
        yield scratch


def command_environment(
    home: str,
    extra: Mapping[str, str] | None = None,
    carried: CarriedEnvironment | None = None,
) -> dict[str, str]:
    """The environment of a command from the repository: the allowlist, with `home` as HOME.

    Code an agent wrote runs in it, so HOME and XDG_CONFIG_HOME point at the agent's own
    home: the bot's `~/.aws`, `~/.netrc` or `~/.config/gh` are not where tools look by
    default. It is the same OS user, though, so a command that names one of the bot's
    files by its absolute path can still read it; this changes default lookups, it is
    not a sandbox. `carried` adds what the configuration lets through (CA bundles,
    toolchain homes); its fixed values win over `extra`, never over HOME.
    """
    carried = carried or CarriedEnvironment()
    return child_environment(
        allow=carried.names,
        extra={
            **(extra or {}),
            **carried.values,
            "HOME": home,
            "XDG_CONFIG_HOME": str(Path(home) / ".config"),
        },
    )


def run_tests(
    command: str,
    cwd: Path,
    timeout: float = 900,
    *,
    home: str | None = None,
    carried: CarriedEnvironment | None = None,
    sandbox: Sandbox | None = None,
) -> TestRun:
    """Run `command` in `cwd` with a clean environment and a hard timeout.

    The command comes from configuration (trusted), so it runs through the shell; it
    never contains anything a Slack user typed. The tests it runs are the agent's,
    though: they get no bot secret, `home` (see `command_environment`) as HOME, and run
    in `sandbox` (see `agents.sandbox`): by default one with no network at all.

    Args:
        command: The repository's configured test command.
        cwd: The task's worktree.
        timeout: Seconds before the command's whole process group is killed.
        home: The agent's private home; None for a throwaway one.
        carried: What the configuration lets the command carry from the worker.
        sandbox: Where the command runs; the default sandbox, without network, if None.

    Raises:
        SandboxError: When the sandbox could not start (the command never ran).
    """
    started = time.monotonic()
    timed_out = False
    sandbox = Sandbox() if sandbox is None else sandbox
    with (
        command_home(home) as run_home,
        sandbox.launch(
            ["/bin/sh", "-c", command],
            workspace=cwd,
            home=run_home,
            env=command_environment(
                run_home, {"PYTHONDONTWRITEBYTECODE": "1", "CI": "true"}, carried
            ),
        ) as launch,
        group_process(
            launch.argv,
            cwd=cwd,
            env=launch.env,
            pass_fds=launch.pass_fds,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        ) as process,
    ):
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(process.pid)
            output, _ = process.communicate()
        launch.verify(output)
    passed, failed, errors = parse_counts(output)
    return TestRun(
        command=command,
        exit_code=process.returncode,
        passed=passed,
        failed=failed,
        errors=errors,
        duration_seconds=round(time.monotonic() - started, 2),
        output_tail=output[-OUTPUT_TAIL:],
        timed_out=timed_out,
    )


# -- what an agent changed -------------------------------------------------------------


@dataclass(frozen=True)
class FileChange:
    """One file an agent added (A), modified (M), deleted (D) or retyped (T)."""

    status: str
    path: str

    def __str__(self) -> str:
        return f"{self.status} {self.path}"


def is_test_file(path: str) -> bool:
    """Whether `path` is test code or test support (what the RED phase may change).

    The well-known test locations and names of each ecosystem, as listed in
    `agents.workspace.TEST_FILE_RULES` (pytest's `conftest.py` among them, where
    fixtures for a new test belong).
    """
    return is_test_path(path)


def snapshot(workspace: Path) -> str:
    """The worktree's content right now, as a git tree id; nothing in the repo changes.

    Tracked and untracked files count, ignored ones (caches, build output) do not. It
    is written through a scratch copy of the index, so the agent's own staging area,
    the branch and its history are left exactly as they were.

    Raises:
        AgentError: When git cannot read the worktree.
    """
    index = Path(git(["rev-parse", "--git-path", "index"], workspace).strip())
    index = index if index.is_absolute() else workspace / index
    with tempfile.TemporaryDirectory(prefix="agentbot-index-") as scratch:
        scratch_index = Path(scratch) / "index"
        env = {"GIT_INDEX_FILE": str(scratch_index)}
        if index.is_file():
            shutil.copyfile(index, scratch_index)  # its stat cache spares rehashing
        else:
            git(["read-tree", "HEAD"], workspace, env=env)
        git(["add", "--all"], workspace, env=env)
        return git(["write-tree"], workspace, env=env).strip()


def changes_between(workspace: Path, before: str, after: str) -> list[FileChange]:
    """The files that differ between two snapshots of the same worktree.

    Raises:
        AgentError: When git cannot compare them.
    """
    output = git(
        ["diff-tree", "-r", "--no-renames", "--name-status", "-z", before, after], workspace
    )
    fields = output.split("\0")
    return [
        FileChange(status=fields[i][:1], path=fields[i + 1])
        for i in range(0, len(fields) - 1, 2)
        if fields[i]
    ]
