"""Each task's runs get a HOME of their own: no task reads or plants another's files.

The agent's CLI keeps its session transcripts in HOME, and the agent's commands and the
repo's tests may leave anything there. Two tasks run for real, one after the other,
through the app: each run writes a note into its HOME and reports every note it finds
there or beside it. Task T-2 must find only its own.
"""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from agents.base import Plan, RepoSpec, TaskBrief
from agents.claude_code import ClaudeCodeRunner
from agents.runner import task_home
from agents.scripted import SCRIPT_PATH, ScriptedExecutor
from jobs.config import AgentbotConfig
from jobs.tasks import get_task
from sandbox.sample import PLAN
from tests.agents.fake_cli import agent_options, init, result
from tests.conftest import APPROVER, git
from tests.slackclient import SlackUser

# Run inside a task's worktree (named by the task's key): report the notes in HOME and
# in every directory beside it, then leave one, and try to plant one in T-2's home.
LOOK = (
    'k=$(basename "$PWD"); '
    'for f in "$HOME"/note-* "$HOME"/../*/note-* "$HOME"/../T-2/planted; do '
    '[ -f "$f" ] && sed "s/^/found: /" "$f"; done; '
    'echo "by WHO of $k" > "$HOME/note-WHO-$k"; '
    '[ "$k" = T-2 ] || { mkdir -p "$HOME/../T-2"; echo "planted by $k" > "$HOME/../T-2/planted"; '
    "} 2>/dev/null; true"
)


def _found(output: str) -> set[str]:
    return {line.removeprefix("found: ") for line in output.splitlines() if line[:7] == "found: "}


@pytest.fixture
def config(config: AgentbotConfig) -> AgentbotConfig:
    """The sample repo, its test command prefixed with the look into HOME."""
    repo = config.repos[0]
    command = f"{LOOK.replace('WHO', 'tests')}; {repo.test_command}"
    return config.model_copy(update={"repos": (repo.model_copy(update={"test_command": command}),)})


def _run_task(user: SlackUser, description: str, key: str, task_id: int) -> dict[str, object]:
    user.command(f"run {description}")
    user.work("default", "plan")
    user.command(f"approve {key}", user=APPROVER)
    user.work("default", "execute")
    with user.services.db.session() as session:
        task = get_task(session, task_id)
    assert task.state == "succeeded", task.error
    return dict(task.result)


def test_a_task_never_sees_what_another_tasks_runs_left_in_home(
    user: SlackUser, config: AgentbotConfig, sample_repo: Path, tmp_path: Path
) -> None:
    """T-2's agent command and test runs find T-2's own notes only: none of T-1's, nothing
    T-1 planted for it, though T-1 wrote into its HOME and tried beside it."""
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(sample_repo), str(clone), cwd=tmp_path)
    script = json.loads((clone / SCRIPT_PATH).read_text())
    discount = next(s for s in script["scenarios"] if s["match"] == ["discount"])
    look = LOOK.replace("WHO", "agent")
    discount["command"] = ["sh", "-c", f'{{ {look}; }} >> "$HOME/agent-found"']
    (clone / SCRIPT_PATH).write_text(json.dumps(script))
    git("add", "--all", cwd=clone)
    git("commit", "--quiet", "-m", "look into HOME", cwd=clone)
    git("push", "--quiet", "origin", "main", cwd=clone)

    first = _run_task(user, "fix the discount calculation", "T-1", 1)
    second = _run_task(user, "fix the discount rounding", "T-2", 2)

    # Within a task, HOME lasts from run to run: the RED run finds what the runs before
    # it left (so a CLI can resume its session), and only those.
    for outcome, key in ((first, "T-1"), (second, "T-2")):
        red = _found(outcome["tests_red"]["output_tail"])  # type: ignore[index]
        assert red == {f"by agent of {key}", f"by tests of {key}"}, red
        before = _found(outcome["tests_before"]["output_tail"])  # type: ignore[index]
        assert before == set(), before
    assert config.agent.home is not None
    root = Path(config.agent.home)
    # What T-2's agent found, in RED (after the first test run) and GREEN.
    agent_found = _found((root / "T-2" / "agent-found").read_text())
    assert agent_found == {"by tests of T-2", "by agent of T-2"}, agent_found

    # On the host, each task's notes are in its own home, and nothing was planted.
    for key in ("T-1", "T-2"):
        notes = sorted(p.name for p in (root / key).iterdir() if p.name.startswith("note-"))
        assert notes == [f"note-agent-{key}", f"note-tests-{key}"], notes
        assert stat.S_IMODE((root / key).stat().st_mode) == 0o700
    assert not (root / "T-2" / "planted").exists()
    assert not list(root.glob("note-*"))


def test_the_scripted_agents_command_gets_its_tasks_own_home(tmp_path: Path) -> None:
    """One executor, two tasks: each command runs with `<home>/<task key>` as HOME."""
    root = tmp_path / "workspaces" / "home"
    executor = ScriptedExecutor(home=str(root))
    for key in ("T-1", "T-2"):
        workspace = tmp_path / "worktrees" / "acme_calc" / key
        (workspace / SCRIPT_PATH).parent.mkdir(parents=True)
        subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
        look = LOOK.replace("WHO", "agent")
        command = ["sh", "-c", f'{{ {look}; }} > found.txt; printf %s "$HOME" > home.txt']
        scenario = {"match": ["home"], "plan": PLAN, "command": command}
        (workspace / SCRIPT_PATH).write_text(json.dumps({"scenarios": [scenario]}))
        brief = TaskBrief(key, "check home", RepoSpec("acme/calc", "/srv/calc.git", "main", "true"))
        executor.write_failing_test(
            brief, Plan.model_validate(PLAN), workspace, lambda _: None, lambda: False
        )
        assert (workspace / "home.txt").read_text() == str((root / key).resolve())
        assert (workspace / "found.txt").read_text() == "", key
    assert sorted(p.name for p in root.iterdir()) == ["T-1", "T-2"]


@pytest.mark.parametrize("workspace", ["/", "worktrees/acme_calc/.."])
def test_a_path_that_names_no_task_gets_no_home(tmp_path: Path, workspace: str) -> None:
    """A workspace path naming no task is refused rather than handing out the root home."""
    with pytest.raises(ValueError, match="is not a task's worktree"):
        task_home(str(tmp_path / "home"), Path(workspace))
    assert not (tmp_path / "home").exists()


def test_a_stored_login_is_lent_read_only_into_each_tasks_home(tmp_path: Path) -> None:
    """With `CLAUDE_CONFIG_DIR` naming a stored login, the CLI signs in with it, cannot
    change it, sees none of the login directory's transcripts, and keeps its own session
    in its task's home, where the next task does not see it."""
    stored = tmp_path / "operator" / ".claude"
    (stored / "projects" / "private").mkdir(parents=True)
    (stored / ".credentials.json").write_text('{"claudeAiOauth": "operator-login"}')
    (stored / "projects" / "private" / "s.jsonl").write_text("operator transcript")
    cli = tmp_path / "cli" / "claude"
    cli.parent.mkdir()
    events = "\n".join(json.dumps(event) for event in (init(), result("ok")))
    cli.write_text(
        "#!/bin/sh\n"
        'c="$CLAUDE_CONFIG_DIR"; {\n'
        '  printf "login=%s\\n" "$(cat "$c/.credentials.json")"\n'
        '  echo hijacked > "$c/.credentials.json" && echo "changed the login"\n'
        f'  cat "$c"/projects/*/*.jsonl "{stored}/projects/private/s.jsonl"\n'
        "} > seen 2>/dev/null\n"
        'mkdir -p "$c/projects/task" && echo "session of $(basename "$PWD")" '
        '> "$c/projects/task/s.jsonl"\n'
        f"cat <<'END'\n{events}\nEND\n"
    )
    cli.chmod(0o755)
    root = tmp_path / "workspaces" / "home"
    options = agent_options(
        tmp_path, command=str(cli), home=str(root), env={"CLAUDE_CONFIG_DIR": str(stored)}
    )
    runner = ClaudeCodeRunner(options)
    for key in ("T-1", "T-2"):
        workspace = tmp_path / "worktrees" / "acme_calc" / key
        workspace.mkdir(parents=True)
        runner.run(
            "go",
            system="rules",
            workspace=workspace,
            role="executor",
            progress=lambda _: None,
            cancelled=lambda: False,
        )
        assert (workspace / "seen").read_text() == 'login={"claudeAiOauth": "operator-login"}\n'
        session = root / key / ".claude" / "projects" / "task" / "s.jsonl"
        assert session.read_text() == f"session of {key}\n"
    assert (stored / ".credentials.json").read_text() == '{"claudeAiOauth": "operator-login"}'
    assert sorted(p.name for p in (stored / "projects").iterdir()) == ["private"]
