"""Git configuration an agent plants never runs code or redirects the bot's fetch and push.

The executor agent may run commands in its worktree, and a worktree writes to the
shared mirror's configuration. Whatever it plants there, the bot's fetch and push go to
the configured URL, run nothing the agent wrote, and give the token to no one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agents.base import AgentError, RepoSpec
from agents.git_credentials import TOKEN_VARIABLE, credential_env
from agents.workspace import Workspaces
from sandbox.sample import make_sample_repo

TOKEN = "ghs_secret_installation_token"


def run_git(*args: str, cwd: Path) -> str:
    """Git as the agent would run it in its worktree."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def evil_program(tmp_path: Path) -> tuple[Path, Path]:
    """A program that records its environment, as a planted command would."""
    leak = tmp_path / "leak"
    program = tmp_path / "evil.sh"
    program.write_text(f'#!/bin/sh\nenv >> "{leak}"\nexit 1\n')
    program.chmod(0o755)
    return program, leak


def plant(worktree: Path, tmp_path: Path, remote: Path, *, scope: str) -> Path:
    """Write into the repository's configuration everything that once ran or redirected."""
    program, leak = evil_program(tmp_path)
    hooks = tmp_path / "evil-hooks"
    hooks.mkdir()
    for name in ("pre-push", "pre-commit", "post-commit", "reference-transaction"):
        (hooks / name).write_text(f'#!/bin/sh\nenv >> "{leak}"\n')
        (hooks / name).chmod(0o755)
    decoy = make_sample_repo(tmp_path / "decoy.git")
    flag = ["--worktree"] if scope == "worktree" else []
    if scope == "worktree":
        # Per-worktree configuration, set up as git documents it for a bare repository.
        mirror = Path(run_git("rev-parse", "--git-common-dir", cwd=worktree).strip())
        run_git("config", "extensions.worktreeConfig", "true", cwd=mirror)
        run_git("config", "--unset", "core.bare", cwd=mirror)
        run_git("config", "--worktree", "core.bare", "true", cwd=mirror)
    settings = {
        "core.sshCommand": str(program),
        "core.fsmonitor": str(program),
        "core.hooksPath": str(hooks),
        "remote.origin.url": "ssh://git@example.invalid/acme/calc.git",
        "remote.origin.pushurl": str(decoy),
        "remote.origin.receivepack": str(program),
        "remote.origin.uploadpack": str(program),
        "protocol.ext.allow": "always",
        f"url.ext::{program}.insteadOf": str(remote),
        "credential.helper": f"!{program}",
    }
    for key, value in settings.items():
        run_git("config", *flag, key, value, cwd=worktree)
    return leak


@pytest.mark.parametrize("scope", ["mirror", "worktree"])
def test_planted_configuration_neither_runs_nor_redirects_the_push(
    tmp_path: Path, scope: str
) -> None:
    """One task's agent plants config; another task's push still lands at the real remote."""
    remote = make_sample_repo(tmp_path / "remote.git")
    spec = RepoSpec("acme/calc", str(remote), "main", "python -m pytest -q")
    workspaces = Workspaces(tmp_path / "ws", git_env=credential_env(TOKEN, ["github.com"]))
    attacker = workspaces.prepare(spec, "T-1")
    victim = workspaces.prepare(spec, "T-2")
    leak = plant(attacker if scope == "mirror" else victim, tmp_path, remote, scope=scope)
    mirror = next((tmp_path / "ws" / "mirrors").glob("*.git"))
    (mirror / "hooks" / "pre-push").write_text(f'#!/bin/sh\nenv >> "{leak}"\n')
    (mirror / "hooks" / "pre-push").chmod(0o755)

    (victim / "NOTES.md").write_text("notes\n")
    assert workspaces.commit_all(victim, "docs: notes\n\nTask: T-2")
    workspaces.push(victim, "T-2")
    workspaces.prepare(spec, "T-2")

    assert not leak.exists()
    assert run_git("show", "agent/T-2:NOTES.md", cwd=remote) == "notes\n"
    assert run_git("branch", "--list", "agent/T-2", cwd=tmp_path / "decoy.git") == ""


def test_https_fetch_ignores_a_planted_url_rewrite(tmp_path: Path) -> None:
    """A rewrite of the HTTPS URL to a command is ignored; the fetch fails cleanly instead."""
    url = "https://127.0.0.1:1/acme/calc.git"
    spec = RepoSpec("acme/calc", url, "main", "python -m pytest -q")
    workspaces = Workspaces(tmp_path / "ws", git_env=credential_env(TOKEN, ["127.0.0.1"]))
    with pytest.raises(AgentError, match="git fetch failed"):
        workspaces.prepare(spec, "T-1")
    mirror = next((tmp_path / "ws" / "mirrors").glob("*.git"))
    program, leak = evil_program(tmp_path)
    for key, value in {
        "protocol.ext.allow": "always",
        f"url.ext::{program}.insteadOf": url,
        "credential.helper": f"!{program}",
        "http.proxy": "http://127.0.0.1:9",
    }.items():
        run_git("config", key, value, cwd=mirror)

    with pytest.raises(AgentError, match="git fetch failed") as failure:
        workspaces.prepare(spec, "T-1")
    assert TOKEN not in str(failure.value)
    assert not leak.exists()


def test_ssh_remote_gets_no_token_and_no_planted_ssh_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ssh remote runs the operator's ssh command, never a planted one, without the token."""
    url = "ssh://git@127.0.0.1:1/acme/calc.git"
    spec = RepoSpec("acme/calc", url, "main", "python -m pytest -q")
    seen = tmp_path / "ssh-env"
    operator_ssh = tmp_path / "operator-ssh.sh"
    operator_ssh.write_text(f'#!/bin/sh\nenv > "{seen}"\nexit 255\n')
    operator_ssh.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(operator_ssh))
    workspaces = Workspaces(tmp_path / "ws", git_env=credential_env(TOKEN, ["127.0.0.1"]))
    with pytest.raises(AgentError):
        workspaces.prepare(spec, "T-1")
    mirror = next((tmp_path / "ws" / "mirrors").glob("*.git"))
    program, leak = evil_program(tmp_path)
    run_git("config", "core.sshCommand", str(program), cwd=mirror)
    seen.unlink()

    with pytest.raises(AgentError, match="git fetch failed"):
        workspaces.prepare(spec, "T-1")
    assert not leak.exists()
    assert seen.exists()
    assert TOKEN not in seen.read_text() and TOKEN_VARIABLE not in seen.read_text()


def test_push_goes_only_to_a_prepared_worktree(tmp_path: Path) -> None:
    """A path the bot never prepared is not pushed from."""
    workspaces = Workspaces(tmp_path / "ws")
    with pytest.raises(AgentError, match="was not prepared"):
        workspaces.push(tmp_path / "elsewhere", "T-9")
