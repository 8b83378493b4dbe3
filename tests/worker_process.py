"""`agentbot worker` run as a process of its own, as a deployment starts it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sandbox.dev import dev_config, to_toml
from sandbox.sample import make_sample_repo

ROOT = Path(__file__).resolve().parents[1]


def run_burst_worker(
    tmp_path: Path,
    redis_url: str,
    database_url: str,
    extra_env: dict[str, str] | None = None,
    agent: dict[str, Any] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `agentbot worker default --burst` on the sample repo until its queue is empty.

    Args:
        tmp_path: Where the configuration, the sample repo and the workspaces go.
        redis_url: The Redis holding the queue.
        database_url: The database the worker records tasks in.
        extra_env: Further variables for the worker's environment.
        agent: Keys of the configuration's `[agent]` table to set.

    Returns:
        The finished process, with its output captured as text.
    """
    config = tmp_path / "agentbot.toml"
    remote = make_sample_repo(tmp_path / "remote")
    data = dev_config(remote, tmp_path / "ws", "scripted")
    data["agent"] = {**data.get("agent", {}), **(agent or {})}
    config.write_text(to_toml(data))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),  # so the horse can import the test modules' jobs
        "AGENTBOT_CONFIG": str(config),
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        **(extra_env or {}),
    }
    agentbot = Path(sys.executable).parent / "agentbot"
    return subprocess.run(
        [str(agentbot), "worker", "default", "--burst"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
