"""A test command that reaches no test before any change stops the task there.

Measured with such a command, RED and GREEN mean nothing ("RED did not hold: 0 passed,
0 failed" after the agent was paid to write a test), so the task fails before the
agent starts, saying the command itself is broken and showing what it printed.
"""

from __future__ import annotations

from typing import Any

import pytest

from agents.scripted import ScriptedExecutor
from jobs.config import AgentbotConfig
from jobs.tasks import get_task
from tests.conftest import APPROVER
from tests.slackclient import SlackUser, texts

BROKEN = [
    # A path that does not exist: pytest exits 4 having collected nothing.
    ("python -m pytest -q tests/integration", "file or directory not found"),
    # A tool that is not installed: the shell's 127, no runner at all.
    ("tox -e py", "not found"),
]


@pytest.fixture(params=BROKEN, ids=["nothing-collected", "no-such-tool"])
def broken(request: pytest.FixtureRequest) -> tuple[str, str]:
    return tuple(request.param)


@pytest.fixture
def config(config: AgentbotConfig, broken: tuple[str, str]) -> AgentbotConfig:
    repo = config.repos[0].model_copy(update={"test_command": broken[0]})
    return config.model_copy(update={"repos": (repo,)})


def test_a_baseline_that_runs_no_test_fails_before_the_agent_starts(
    user: SlackUser, broken: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread names the broken command and shows its output; no agent ran RED."""
    started: list[str] = []
    write_failing_test = ScriptedExecutor.write_failing_test

    def record(self: ScriptedExecutor, *args: Any, **kwargs: Any) -> Any:
        started.append("red")
        return write_failing_test(self, *args, **kwargs)

    monkeypatch.setattr(ScriptedExecutor, "write_failing_test", record)
    command, output = broken
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)
    user.work("default", "execute")
    user.work("default")

    with user.services.db.session() as session:
        task = get_task(session, 1)
    assert task.state == "failed"
    assert started == []
    assert "The test command itself is broken" in (task.error or "")
    assert f"`{command}` ran no test" in (task.error or "")
    outcome = texts(user.thread()[-1])
    assert "The test command itself is broken" in outcome
    assert output in outcome
    assert "Traceback" not in outcome and "RED did not hold" not in outcome
