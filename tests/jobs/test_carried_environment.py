"""What a repo's test command and its agent may carry from the worker's environment.

Tools need more than PATH: uv and pip a CA bundle behind a TLS proxy, a rustup cargo
its toolchain homes. The configuration names what passes through and sets fixed
values, per repo on top of a default; the bot's own secrets never pass, by name or by
value.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.claude_code import claude_environment
from agents.config import AgentConfig, EnvironmentConfig
from bot.runtime import cli_options
from bot.settings import ConfigError, Settings, load_config_file
from jobs.config import AgentbotConfig
from jobs.tasks import get_task
from tests.conftest import APPROVER
from tests.slackclient import SlackUser

CA_BUNDLE = "/etc/ssl/corporate-ca.pem"
SHOW = (
    'printf "cert=%s\\nrustup=%s\\nindex=%s\\nhidden=%s\\n" '
    '"${SSL_CERT_FILE:-none}" "${RUSTUP_HOME:-none}" "${UV_INDEX_URL:-none}" '
    '"${UNLISTED:-none}"'
)
TOKEN = "ghp_the_bots_own_github_token_0123"


@pytest.fixture
def worker_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's environment, as a team's machine has it."""
    monkeypatch.setenv("SSL_CERT_FILE", CA_BUNDLE)
    monkeypatch.setenv("RUSTUP_HOME", "/opt/rustup")
    monkeypatch.setenv("UNLISTED", "not for children")


@pytest.fixture
def config(config: AgentbotConfig) -> AgentbotConfig:
    """The sample repo passes rustup's home through; every repo gets the CA bundle."""
    repo = config.repos[0]
    repo = repo.model_copy(
        update={
            "test_command": f"{SHOW}; {repo.test_command}",
            "environment": EnvironmentConfig(
                pass_through=("RUSTUP_HOME",), set={"UV_INDEX_URL": "https://pypi.example/simple"}
            ),
        }
    )
    return config.model_copy(
        update={
            "repos": (repo,),
            "environment": EnvironmentConfig(pass_through=("SSL_CERT_FILE",)),
        }
    )


def test_the_bots_test_runs_carry_what_the_configuration_lets_through(
    worker_environment: None, user: SlackUser
) -> None:
    """Before, RED and GREEN: the default's and the repo's variables, nothing unlisted."""
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)
    user.work("default", "execute")
    with user.services.db.session() as session:
        task = get_task(session, 1)
    assert task.state == "succeeded", task.error
    for run in ("tests_before", "tests_red", "tests_after"):
        output = task.result[run]["output_tail"]
        assert f"cert={CA_BUNDLE}\nrustup=/opt/rustup\n" in output, run
        assert "index=https://pypi.example/simple\nhidden=none\n" in output, run


def test_the_agent_carries_the_repos_environment_too(worker_environment: None) -> None:
    """The coding agent's CLI gets the same variables; `[agent] env` still wins."""
    agent = AgentConfig(kind="claude-code", env={"UV_INDEX_URL": "https://agent.example/simple"})
    environment = EnvironmentConfig(
        toolchain=True, set={"UV_INDEX_URL": "https://pypi.example/simple", "CI": "1"}
    )
    env = claude_environment(cli_options(agent.with_environment(environment)))
    assert env["SSL_CERT_FILE"] == CA_BUNDLE
    assert env["RUSTUP_HOME"] == "/opt/rustup"
    assert env["UV_INDEX_URL"] == "https://agent.example/simple"
    assert env["CI"] == "1"
    assert "UNLISTED" not in env


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "agentbot.toml"
    path.write_text(
        '[[repos]]\nname = "acme/calc"\ngit_url = "https://github.com/acme/calc.git"\n' + body
    )
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[environment]\npass_through = ["GITHUB_TOKEN"]\n',
            "environment.pass_through: Value error, GITHUB_TOKEN is the bot's own",
        ),
        (
            '[repos.environment]\nset = { SLACK_BOT_TOKEN = "x" }\n',
            "repos.0.environment.set: Value error, SLACK_BOT_TOKEN is the bot's own",
        ),
        (
            '[environment]\npass_through = ["NOT A NAME"]\n',
            "'NOT A NAME' is not a variable name",
        ),
    ],
    ids=["default-pass-through", "repo-set", "not-a-name"],
)
def test_the_bots_own_names_are_refused_at_load(tmp_path: Path, body: str, message: str) -> None:
    """A bot secret's name anywhere in an environment stops the configuration loading."""
    with pytest.raises(ConfigError) as refused:
        load_config_file(write_config(tmp_path, body))
    assert message in str(refused.value)
    assert "Traceback" not in str(refused.value)


def bot_settings(config_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        GITHUB_TOKEN=TOKEN,
        AGENTBOT_CONFIG=str(config_path),
    )


def test_a_secret_value_under_another_name_is_refused(tmp_path: Path) -> None:
    """The GitHub token pasted into `set` under an innocent name is refused, unshown."""
    path = write_config(tmp_path, f'[repos.environment]\nset = {{ DEPLOY_KEY = "{TOKEN}" }}\n')
    with pytest.raises(ConfigError) as refused:
        bot_settings(path).config  # noqa: B018 - reading it is what is tested
    assert str(refused.value) == (
        "AGENTBOT_CONFIG: repos.acme/calc.environment: DEPLOY_KEY holds one of the bot's "
        "own secrets; it never reaches tests or the agent"
    )
    assert TOKEN not in str(refused.value)


def test_a_passed_through_variable_holding_a_secret_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name let through whose value in the worker is the bot's token never passes."""
    monkeypatch.setenv("PIP_INDEX_URL", f"https://x:{TOKEN}@pypi.example/simple")
    path = write_config(tmp_path, '[environment]\npass_through = ["PIP_INDEX_URL"]\n')
    with pytest.raises(ConfigError, match="environment: PIP_INDEX_URL holds one of the bot's"):
        bot_settings(path).config  # noqa: B018 - reading it is what is tested
    monkeypatch.setenv("PIP_INDEX_URL", "https://pypi.example/simple")
    assert bot_settings(path).config.environment.pass_through == ("PIP_INDEX_URL",)
