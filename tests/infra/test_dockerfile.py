"""The Dockerfile's build commands, run here as the image build would run them.

No container engine is available to the tests, so the build stage's own `uv sync`
commands are run on a copy of exactly what its COPY lines bring in, and the result is
checked the way the runtime stage uses it: the entry point, a migration, and the
HEALTHCHECK command against a running `agentbot serve`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.fakes.claude_cli import CLAUDE_CODE_VERSION, default_cache_dir
from tests.infra.dockerfile import Dockerfile, dockerignore, ignored, parse
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse(ROOT / "Dockerfile")


def test_image_shape(dockerfile: Dockerfile):
    """Multi-stage, slim, non-root, one entry point for every process, a health check."""
    assert [s.name for s in dockerfile.stages] == ["claude", "build", "runtime"]
    runtime = dockerfile.stage("runtime")
    assert "slim" in dockerfile.expand(runtime.base)
    user = runtime.all("USER")[-1].value
    assert user.split(":")[0] not in ("0", "root")
    assert runtime.all("ENTRYPOINT")[-1].exec_form() == ["tini", "--", "agentbot"]
    assert runtime.all("CMD")[-1].exec_form() == ["serve"]
    assert runtime.all("HEALTHCHECK"), "no HEALTHCHECK"
    # Only the finished virtualenv and the CLI reach the runtime image, not the sources.
    copies = [i.value for i in runtime.all("COPY")]
    assert all(c.startswith("--from=") for c in copies)


def test_claude_code_is_pinned_with_the_version_the_tests_run(dockerfile: Dockerfile):
    """The image installs the same Claude Code CLI release the test suite exercises."""
    assert dockerfile.args["CLAUDE_CODE_VERSION"] == CLAUDE_CODE_VERSION
    assert dockerfile.args["WITH_CLAUDE_CODE"] == "true"
    run = dockerfile.stage("claude").all("RUN")[0].value
    assert '[ "$WITH_CLAUDE_CODE" = "true" ]' in run and "--include=optional" in run
    source = "node_modules/@anthropic-ai/claude-code/bin/claude.exe"
    assert f"/tmp/claude/{source}" in run
    # Where the suite has installed that release with npm, the copied file is really there.
    installed = default_cache_dir() / source
    if default_cache_dir().exists():
        assert installed.is_file(), f"the npm package no longer ships {source}"


def test_copied_sources_exist_and_survive_dockerignore(dockerfile: Dockerfile):
    """Every COPY source of the build stage exists and is not excluded from the context."""
    patterns = dockerignore(ROOT / ".dockerignore")
    for copy in dockerfile.stage("build").all("COPY"):
        for source in shlex.split(copy.value)[:-1]:
            assert (ROOT / source).exists(), source
            assert not ignored(source, patterns), f"{source} is excluded by .dockerignore"
    assert ignored(".venv", patterns) and ignored("tests/conftest.py", patterns)
    assert ignored(".env", patterns) and ignored(".git", patterns)


def _build_context(dockerfile: Dockerfile, into: Path) -> None:
    for copy in dockerfile.stage("build").all("COPY"):
        *sources, _target = shlex.split(copy.value)
        for source in sources:
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(
                    origin,
                    into / source,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                )
            else:
                shutil.copy2(origin, into / source)


def test_build_stage_commands_produce_a_working_agentbot(
    dockerfile: Dockerfile, tmp_path: Path, redis_url: str
):
    """`uv sync` as in the build stage; then the entry point, a migration and the health check."""
    build = dockerfile.stage("build")
    uv_version = dockerfile.args["UV_VERSION"]
    pip_install = build.all("RUN")[0].value
    assert dockerfile.expand(pip_install) == f'pip install --no-cache-dir "uv=={uv_version}"'
    found = subprocess.run(["uv", "--version"], capture_output=True, text=True, check=True)
    assert found.stdout.split()[1] == uv_version, "the pinned uv is not the one locking here"

    context = tmp_path / "src"
    context.mkdir()
    _build_context(dockerfile, context)
    venv = tmp_path / "venv"
    env = {
        **os.environ,
        **build.env(),
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": sys.executable,
        # Byte-compiling every dependency adds half a minute and proves nothing here.
        "UV_COMPILE_BYTECODE": "0",
    }
    env.pop("VIRTUAL_ENV", None)
    syncs = [r.value for r in build.all("RUN") if r.value.startswith("uv sync")]
    assert len(syncs) == 2 and all("--frozen" in s and "--no-dev" in s for s in syncs)
    for command in syncs:
        subprocess.run(shlex.split(command), cwd=context, env=env, check=True, timeout=240)

    agentbot = venv / "bin" / "agentbot"
    shutil.rmtree(context)  # a --no-editable install must not need the sources
    helped = subprocess.run([agentbot, "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0
    for command in ("serve", "worker", "cron", "migrate"):
        assert command in helped.stdout
    dev_only = subprocess.run(
        [venv / "bin" / "python", "-c", "import pytest"], capture_output=True, timeout=60
    )
    assert dev_only.returncode != 0, "dev dependencies were installed into the image"
    for sandbox_only in ("sandbox", "moto", "fakeredis"):
        found = subprocess.run(
            [venv / "bin" / "python", "-c", f"import {sandbox_only}"],
            cwd=tmp_path,  # not the checkout, whose own folders `python -c` would see
            capture_output=True,
        )
        assert found.returncode != 0, f"{sandbox_only} ships in the image"
    dev = subprocess.run(
        [agentbot, "dev"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert dev.returncode == 2
    assert dev.stderr.splitlines() == [
        "agentbot dev needs the development dependencies (sandbox, moto, fakeredis missing): "
        "run `uv sync` in a checkout of the repository, then `uv run agentbot dev`"
    ]

    run_env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'agentbot.db'}",
        "REDIS_URL": redis_url,
        "SLACK_BOT_TOKEN": "xoxb-image-test",
        "SLACK_SIGNING_SECRET": "image-test-signing-secret",
    }
    migrated = subprocess.run(
        [agentbot, "migrate"], env=run_env, cwd=tmp_path, capture_output=True, text=True
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "database is at revision head" in migrated.stdout
    # The worker and the scheduler run without the sandbox's libraries too.
    worked = subprocess.run(
        [agentbot, "worker", "--burst"], env=run_env, cwd=tmp_path, capture_output=True, text=True
    )
    assert worked.returncode == 0, worked.stderr
    in_process = subprocess.run(
        [agentbot, "worker", "--burst"],
        env={**run_env, "REDIS_URL": "memory://"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert in_process.returncode == 2
    assert in_process.stderr.splitlines() == [
        "agentbot: configuration error: REDIS_URL: memory:// is the dev sandbox's in-process "
        "Redis, which needs the development dependencies (`uv sync`); use redis://, rediss:// "
        "or unix://"
    ]
    cron = subprocess.Popen(
        [agentbot, "cron"], env=run_env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(3)
        assert cron.poll() is None, cron.stderr.read() if cron.stderr else ""
    finally:
        cron.terminate()
        cron.wait(timeout=30)

    health = dockerfile.stage("runtime").all("HEALTHCHECK")[-1].exec_form()
    assert health is not None and health[0] == "python"
    port = free_port()
    check_env = {**run_env, "PORT": str(port)}
    check = [str(venv / "bin" / "python"), *health[1:]]
    assert subprocess.run(check, env=check_env, capture_output=True, timeout=30).returncode != 0
    server = subprocess.Popen(
        [agentbot, "serve", "--port", str(port), "--workers", "1", "--threads", "2"],
        env=check_env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.2)
        healthy = subprocess.run(check, env=check_env, capture_output=True, timeout=30)
        assert healthy.returncode == 0, healthy.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_image_carries_the_sandbox(dockerfile: Dockerfile):
    """bubblewrap and socat are installed: without them every agent and test run fails."""
    installs = " ".join(i.value for i in dockerfile.stage("runtime").all("RUN"))
    assert "apt-get install" in installs
    for package in ("bubblewrap", "socat"):
        assert package in installs.split(), package
