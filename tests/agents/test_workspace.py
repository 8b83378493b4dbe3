"""Task workspaces: one mirror per repo, a worktree and branch of its own per task."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agents.base import RepoSpec
from agents.testing import is_test_file
from agents.workspace import (
    INERT_CACHES,
    Workspaces,
    clean_worktree,
    commit_scope,
    is_test_path,
)
from sandbox.sample import make_sample_repo


def test_concurrent_tasks_on_one_repo_never_share_a_worktree(tmp_path: Path) -> None:
    """Tasks prepared at the same time get separate worktrees on their own branches."""
    remote = make_sample_repo(tmp_path / "remote.git")
    spec = RepoSpec("acme/calc", str(remote), "main", "python -m pytest -q")
    workspaces = Workspaces(tmp_path / "ws")
    keys = [f"T-{n}" for n in range(1, 5)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        paths = list(pool.map(lambda key: workspaces.prepare(spec, key), keys))
    assert len(set(paths)) == 4
    assert len(list((tmp_path / "ws" / "mirrors").glob("*.git"))) == 1
    for key, path in zip(keys, paths, strict=True):
        branch = subprocess.run(
            ["git", "branch", "--show-current"], cwd=path, capture_output=True, text=True
        ).stdout.strip()
        assert branch == f"agent/{key}"
    # Work in one task's tree is invisible in another's.
    (paths[0] / "pricing.py").write_text("changed\n")
    assert (paths[1] / "pricing.py").read_text() != "changed\n"


def test_test_caches_are_never_committed(tmp_path: Path) -> None:
    """Bytecode and pytest caches left by test runs stay out of the task's commits."""
    remote = make_sample_repo(tmp_path / "remote.git")
    spec = RepoSpec("acme/calc", str(remote), "main", "python -m pytest -q")
    workspaces = Workspaces(tmp_path / "ws")
    path = workspaces.prepare(spec, "T-1")
    (path / "__pycache__").mkdir()
    (path / "__pycache__" / "pricing.cpython-311.pyc").write_bytes(b"\x00")
    (path / ".pytest_cache").mkdir()
    (path / ".pytest_cache" / "README.md").write_text("cache\n")
    (path / "pricing.py").write_text((path / "pricing.py").read_text() + "\n# touched\n")
    workspaces.commit_all(path, "fix(pricing): touch\n\nTask: T-1")
    assert workspaces.diff_stat(path, "origin/main").files == ["pricing.py"]


def test_preparing_again_restores_the_branch_as_last_pushed(tmp_path: Path) -> None:
    """A failed attempt's edits, new files and unpushed commit are gone; caches stay."""
    remote = make_sample_repo(tmp_path / "remote.git")
    spec = RepoSpec("acme/calc", str(remote), "main", "python -m pytest -q")
    workspaces = Workspaces(tmp_path / "ws")
    path = workspaces.prepare(spec, "T-1")
    (path / "PLAN.md").write_text("# Plan\n")
    pushed = workspaces.commit_all(path, "docs: plan for T-1\n\nTask: T-1")
    workspaces.push(path, "T-1")
    original = (path / "pricing.py").read_text()
    # A failed attempt: a commit whose push never happened, then uncommitted work.
    (path / "pricing.py").write_text("committed but never pushed\n")
    workspaces.commit_all(path, "fix(pricing): unpushed\n\nTask: T-1")
    (path / "pricing.py").write_text("half a fix\n")
    (path / "tests" / "test_discount.py").write_text("def test_x():\n    assert False\n")
    (path / "scratch").mkdir()
    (path / "scratch" / ".gitignore").write_text("*\n")
    (path / "scratch" / "hidden.py").write_text("hidden by its own .gitignore\n")
    (path / "__pycache__").mkdir()
    (path / "__pycache__" / "pricing.cpython-311.pyc").write_bytes(b"\x00")

    again = workspaces.prepare(spec, "T-1")

    assert again == path
    assert (path / "pricing.py").read_text() == original
    assert (path / "PLAN.md").read_text() == "# Plan\n"
    assert not (path / "tests" / "test_discount.py").exists()
    assert not (path / "scratch").exists()
    assert (path / "__pycache__" / "pricing.cpython-311.pyc").exists()
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True
    ).stdout.strip()
    branch = subprocess.run(
        ["git", "branch", "--show-current"], cwd=path, capture_output=True, text=True
    ).stdout.strip()
    assert (head, branch) == (pushed, "agent/T-1")


def test_an_unpushed_branch_is_restored_to_its_last_commit(tmp_path: Path) -> None:
    """A branch never pushed keeps its commits; only uncommitted work is dropped."""
    remote = make_sample_repo(tmp_path / "remote.git")
    spec = RepoSpec("acme/calc", str(remote), "main", "python -m pytest -q")
    workspaces = Workspaces(tmp_path / "ws")
    path = workspaces.prepare(spec, "T-1")
    (path / "PLAN.md").write_text("# Plan\n")
    workspaces.commit_all(path, "docs: plan for T-1\n\nTask: T-1")
    (path / "PLAN.md").write_text("edited afterwards\n")
    (path / "new.txt").write_text("new\n")

    workspaces.prepare(spec, "T-1")

    assert (path / "PLAN.md").read_text() == "# Plan\n"
    assert not (path / "new.txt").exists()


TEST_PATHS = (
    "tests/test_pricing.py",
    "tests/__init__.py",
    "tests/fixtures/order.json",
    "test_pricing.py",
    "pkg/cart_test.py",
    "conftest.py",
    "app/orders/tests.py",
    "src/__tests__/cart.js",
    "web/cart.test.ts",
    "web/cart.spec.tsx",
    "lib/cart.test.mjs",
    "test/cart.js",
    "cmd/server_test.go",
    "pkg/parse/testdata/input.txt",
    "spec/cart_spec.rb",
    "spec/spec_helper.rb",
    "spec/support/factories.rb",
    "tests/integration.rs",
    "src/test/java/shop/CartTest.java",
    "Tests/Test_Pricing.PY",
)
PRODUCTION_PATHS = (
    "pricing.py",
    "src/auth/session.py",
    "contest.py",
    "latest/notes.md",
    "spec/openapi.yaml",
    "spec/cart.rb",
    "api/openapi.spec.yaml",
    "src/ab_testing.py",
    "config/test.yml",
    "docs/testing.md",
    "src/testutil.go",
    "lib/spec_parser.rb",
    "src/main/java/shop/Cart.java",
)


def test_test_paths_follow_each_ecosystems_conventions() -> None:
    """Well-known test names and directories count as tests; specs and lookalikes do not."""
    assert [p for p in TEST_PATHS if not is_test_path(p)] == []
    assert [p for p in PRODUCTION_PATHS if is_test_path(p)] == []
    assert is_test_file("spec/cart_spec.rb") and not is_test_file("spec/openapi.yaml")


def test_commit_scope_skips_tests() -> None:
    """The commit scope comes from the production file, not the test beside it."""
    assert commit_scope(["tests/test_pricing.py", "src/pricing/discount.py"]) == "pricing"


def test_cleaning_for_green_keeps_only_inert_caches(tmp_path: Path) -> None:
    """Ignored and untracked files and bytecode go; tool caches and tracked files stay."""
    remote = make_sample_repo(tmp_path / "remote.git")
    spec = RepoSpec("acme/calc", str(remote), "main", "python -m pytest -q")
    path = Workspaces(tmp_path / "ws").prepare(spec, "T-1")
    (path / ".gitignore").write_text("helper.py\n.env\n")
    (path / "helper.py").write_text("FIX = True\n")
    (path / ".env").write_text("TOKEN=x\n")
    (path / "__pycache__").mkdir()
    (path / "__pycache__" / "pricing.cpython-311.pyc").write_bytes(b"\x00")
    (path / "node_modules" / "left-pad").mkdir(parents=True)
    (path / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1\n")
    (path / ".pytest_cache").mkdir()
    (path / ".pytest_cache" / "README.md").write_text("cache\n")

    removed = clean_worktree(path, keep=INERT_CACHES)

    assert sorted(removed) == [
        ".env",
        ".gitignore",
        "__pycache__/",
        "helper.py",
        "node_modules/",
    ]
    assert (path / ".pytest_cache" / "README.md").exists()
    assert (path / "pricing.py").exists() and (path / "tests" / "test_total.py").exists()


def test_a_planted_signing_program_never_runs_on_the_bots_commit(tmp_path: Path) -> None:
    """Signing an agent switched on in the repo's config is off for the bot's own commits."""
    remote = make_sample_repo(tmp_path / "remote.git")
    spec = RepoSpec("acme/calc", str(remote), "main", "python -m pytest -q")
    workspaces = Workspaces(tmp_path / "ws")
    path = workspaces.prepare(spec, "T-1")
    ran = tmp_path / "gpg-ran"
    program = tmp_path / "fake-gpg"
    program.write_text(f"#!/bin/sh\necho ran >> {ran}\nexit 1\n")
    program.chmod(0o755)
    # What an agent with a shell can do: the repository's config is within its reach.
    for key, value in {
        "commit.gpgSign": "true",
        "tag.gpgSign": "true",
        "log.showSignature": "true",
        "gpg.program": str(program),
        "user.signingKey": "ABCDEF",
    }.items():
        subprocess.run(["git", "config", key, value], cwd=path, check=True)
    (path / "PLAN.md").write_text("# Plan\n")

    commit = workspaces.commit_all(path, "docs: plan for T-1\n\nTask: T-1")

    assert commit is not None
    raw = subprocess.run(
        ["git", "cat-file", "commit", commit], cwd=path, capture_output=True, text=True
    ).stdout
    assert "gpgsig" not in raw
    assert not ran.exists()
