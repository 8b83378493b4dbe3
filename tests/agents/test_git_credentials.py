"""Git credentials reach git only, for the right host, and no hook sees them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agents.base import RepoSpec
from agents.git_credentials import credential_env, github_hosts
from agents.workspace import Workspaces
from sandbox.sample import make_sample_repo

TOKEN = "ghs_secret_installation_token"


def fill(host: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Ask git for credentials, as it does before talking to `https://host`."""
    return subprocess.run(
        ["git", "credential", "fill"],
        input=f"protocol=https\nhost={host}\n\n",
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_TERMINAL_PROMPT": "0", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def test_token_is_given_to_the_github_host_only(repo: Path) -> None:
    """github.com gets the token as x-access-token; another host gets nothing."""
    env = credential_env(TOKEN, github_hosts("https://api.github.com"))
    answer = fill("github.com", repo, env)
    assert answer.returncode == 0
    assert f"password={TOKEN}" in answer.stdout and "username=x-access-token" in answer.stdout
    elsewhere = fill("evil.example", repo, env)
    assert elsewhere.returncode != 0 and TOKEN not in elsewhere.stdout + elsewhere.stderr


def test_a_helper_planted_in_the_repo_is_never_asked_or_told(repo: Path, tmp_path: Path) -> None:
    """The repo's own credential helper (which an agent could write) is switched off."""
    leak = tmp_path / "leak"
    planted = f'!f() {{ cat >> "{leak}"; echo password=planted; }}; f'
    subprocess.run(["git", "config", "credential.helper", planted], cwd=repo, check=True)
    subprocess.run(
        ["git", "config", "credential.https://github.com.helper", planted], cwd=repo, check=True
    )
    env = credential_env(TOKEN, ["github.com"])
    answer = fill("github.com", repo, env)
    assert f"password={TOKEN}" in answer.stdout and "planted" not in answer.stdout
    approve = subprocess.run(
        ["git", "credential", "approve"],
        input=f"protocol=https\nhost=github.com\nusername=x-access-token\npassword={TOKEN}\n\n",
        cwd=repo,
        env={"PATH": os.environ["PATH"], "HOME": str(repo), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert approve.returncode == 0
    assert not leak.exists()


def test_enterprise_hosts_come_from_the_api_url() -> None:
    """GitHub Enterprise's token goes to its own host, not to github.com."""
    assert github_hosts("https://github.acme.internal/api/v3") == ("github.acme.internal",)
    assert credential_env("", ["github.com"]) == {}


def test_push_runs_no_repository_hook(tmp_path: Path) -> None:
    """Hooks in the mirror (agent-writable) never run when the bot commits or pushes."""
    remote = make_sample_repo(tmp_path / "remote.git")
    spec = RepoSpec("acme/calc", str(remote), "main", "python -m pytest -q")
    workspaces = Workspaces(tmp_path / "ws", git_env=credential_env(TOKEN, ["github.com"]))
    worktree = workspaces.prepare(spec, "T-1")
    ran = tmp_path / "hook-ran"
    hooks = next((tmp_path / "ws" / "mirrors").glob("*.git")) / "hooks"
    for name in ("pre-push", "post-commit", "pre-commit"):
        (hooks / name).write_text(f"#!/bin/sh\nenv > {ran}\n")
        (hooks / name).chmod(0o755)
    (worktree / "NOTES.md").write_text("notes\n")
    assert workspaces.commit_all(worktree, "docs: notes\n\nTask: T-1")
    workspaces.push(worktree, "T-1")
    assert not ran.exists()
    shown = subprocess.run(
        ["git", "show", "agent/T-1:NOTES.md"], cwd=remote, capture_output=True, text=True
    )
    assert shown.stdout == "notes\n"
