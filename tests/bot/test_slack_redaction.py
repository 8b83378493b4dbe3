"""A job that crashes tells Slack why in words, never with the exception's secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.exc import ProgrammingError

from agents.base import AgentError
from agents.scripted import ScriptedExecutor, ScriptedPlanner
from bot.settings import Settings
from jobs.exceptions import AgentbotError
from jobs.tasks import get_task
from jobs.work import failure_reason
from sandbox.fakeslack import FakeSlack
from tests.conftest import APPROVER
from tests.slackclient import SlackUser, texts

SLACK_TOKEN = "xoxb-1234567890-leakedtokenvalue"
DB_PASSWORD = "hunter2-db-password"
GIT_TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
SECRETS = (SLACK_TOKEN, DB_PASSWORD, GIT_TOKEN, "UPDATE tasks SET", "[parameters:")
# A configured secret no pattern would recognise: only its exact value can mask it.
SENTRY_SECRET = "plain-words-sentry-client-secret"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings plus a webhook secret the bot holds."""
    return settings.model_copy(update={"sentry_client_secret": SecretStr(SENTRY_SECRET)})


def database_error() -> ProgrammingError:
    """What SQLAlchemy raises: the statement and its parameters are in the message."""
    return ProgrammingError(
        "UPDATE tasks SET error=%(error)s WHERE token = %(token)s",
        {"error": "x", "token": SLACK_TOKEN, "dsn": f"postgresql://bot:{DB_PASSWORD}@db/bot"},
        Exception("syntax error at or near WHERE"),
    )


def git_error() -> RuntimeError:
    """A crash whose text quotes a remote URL with credentials in it."""
    return RuntimeError(
        f"fatal: unable to access 'https://x-access-token:{GIT_TOKEN}@github.com/acme/calc.git/'"
    )


def everything_slack_received(slack: FakeSlack) -> str:
    """Every parameter of every Web API call the app made, as one string."""
    return "\n".join(json.dumps(call.params, default=str) for call in slack.calls)


def test_database_error_in_planning_shows_a_generic_message(
    user: SlackUser, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQLAlchemy error's SQL and parameters stay out of the card, thread and task."""
    assert SLACK_TOKEN in str(database_error())  # the danger is real

    def crash(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise database_error()

    monkeypatch.setattr(ScriptedPlanner, "plan", crash)
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    user.work("default")

    with user.services.db.session() as session:
        task = get_task(session, 1)
    assert task.state == "failed"
    generic = (
        "An internal error (ProgrammingError) stopped T-1; the operators' logs have the details."
    )
    assert task.error == f"Job failed: {generic}"
    card = texts(user.card())
    outcome = texts(user.thread()[-1])
    assert generic in card and generic in outcome
    seen = everything_slack_received(slack)
    for secret in SECRETS:
        assert secret not in seen
        assert secret not in (task.error or "")


def test_crash_during_execution_never_shows_the_credentials_in_its_text(
    user: SlackUser, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An executor crash quoting a URL with a token fails the task with the generic message."""
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)

    def crash(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise git_error()

    monkeypatch.setattr(ScriptedExecutor, "write_failing_test", crash)
    user.work("default", "execute")
    user.work("default")

    with user.services.db.session() as session:
        task = get_task(session, 1)
    assert task.state == "failed"
    assert "An internal error (RuntimeError) stopped T-1" in texts(user.card())
    assert "An internal error (RuntimeError) stopped T-1" in texts(user.thread()[-1])
    seen = everything_slack_received(slack)
    assert GIT_TOKEN not in seen and "x-access-token" not in seen
    assert GIT_TOKEN not in (task.error or "")


def test_own_errors_keep_their_readable_message() -> None:
    """The project's own errors are written for people, so their sentence is shown."""
    reason = failure_reason(3, AgentError, AgentError("The repo acme/calc is no longer configured"))
    assert reason == "The repo acme/calc is no longer configured."
    other = failure_reason(3, KeyError, KeyError("secret-value"))
    assert other.startswith("An internal error (KeyError) stopped T-3;")
    assert "secret-value" not in other


def test_own_error_quoting_credentials_reaches_slack_masked(
    user: SlackUser, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A readable error quoting a tokenized remote and a Slack token shows them masked."""
    remote = "https://x-access-token:ghp_secret123@github.com/acme/x.git"
    token = "xoxb-2222222222-abcdefghijklmnop"

    def fail(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise AgentbotError(f"git fetch {remote} failed: remote said {token} is invalid")

    monkeypatch.setattr(ScriptedPlanner, "plan", fail)
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    user.work("default")

    with user.services.db.session() as session:
        assert get_task(session, 1).state == "failed"
    masked = (
        "git fetch https://x-access-token:[REDACTED]@github.com/acme/x.git failed: "
        "remote said [REDACTED] is invalid."
    )
    assert masked in texts(user.card())
    assert masked in texts(user.thread()[-1])
    seen = everything_slack_received(slack)
    assert "ghp_secret123" not in seen and token not in seen


def test_a_configured_secret_quoted_in_an_error_reaches_slack_masked(
    user: SlackUser, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret from the settings, quoted verbatim in a readable error, is masked in Slack."""

    def fail(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise AgentbotError(f"the hook answered with {SENTRY_SECRET} in its body")

    monkeypatch.setattr(ScriptedPlanner, "plan", fail)
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    user.work("default")

    assert "the hook answered with [REDACTED] in its body" in texts(user.thread()[-1])
    assert SENTRY_SECRET not in everything_slack_received(slack)
