"""Logs are JSON lines that name the task, user and job, and never carry a credential."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from rq import Queue
from slack_sdk.signature import SignatureVerifier

from bot import blocks
from bot.logging import MASK, Redactor, configure, secrets_of, task_in_request
from bot.settings import Settings
from jobs.worker import AgentbotWorker
from sandbox.fakeslack import FakeSlack
from tests.conftest import APPROVER, BOT_TOKEN, REQUESTER, SIGNING_SECRET
from tests.services import free_port
from tests.slackclient import SlackUser, texts

SLACK_BOT = "xoxb-2417-98765432101-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_APP = "xapp-1-A0123456789-1234567890123-abcdef0123456789abcdef"
GITHUB_CLASSIC = "ghp_" + "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"
GITHUB_FINE = "github_pat_11ABCDEFG0" + "x" * 20 + "_" + "Y" * 30
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
LEAKS = (SLACK_BOT, SLACK_APP, GITHUB_CLASSIC, GITHUB_FINE, AWS_SECRET, AWS_KEY_ID)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger and structlog back as they were."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def lines(text: str) -> list[dict[str, Any]]:
    """Every line parsed as JSON (fails the test on a line that is not)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_credentials_are_masked_in_messages_fields_and_tracebacks(restore_logging: None):
    """Tokens in a message, a field, a URL or an exception never reach the output."""
    out = io.StringIO()
    configure("DEBUG", secrets=["a-private-signing-secret"], stream=out, json=True)
    std = logging.getLogger("agentbot.test")
    std.info("posting with %s and %s", SLACK_BOT, SLACK_APP)
    std.warning("git push https://x-access-token:%s@github.com/acme/calc failed", GITHUB_CLASSIC)
    std.info("signing secret was a-private-signing-secret; commit %s", "0" * 8 + "deadbeef" * 4)
    try:
        raise RuntimeError(f"AWS refused {AWS_KEY_ID} / {AWS_SECRET}")
    except RuntimeError:
        std.exception("scan failed")
    structlog.get_logger("agentbot.test").info(
        "github", token=GITHUB_FINE, headers={"Authorization": "Bearer abcdefghijkl"}, turns=3
    )
    structlog.get_logger("agentbot.test").info(
        "db", url="postgresql://agentbot:hunter2hunter2@db:5432/agentbot"
    )

    text = out.getvalue()
    for leak in (*LEAKS, "a-private-signing-secret", "abcdefghijkl", "hunter2hunter2"):
        assert leak not in text
    records = lines(text)
    assert len(records) == 6
    assert all(r["logger"] == "agentbot.test" and "timestamp" in r for r in records)
    assert records[0]["event"] == f"posting with {MASK} and {MASK}"
    assert "https://x-access-token:" in records[1]["event"]
    # A git SHA is not mistaken for an AWS secret.
    assert "deadbeef" * 4 in records[2]["event"]
    assert records[3]["level"] == "error" and "RuntimeError: AWS refused" in records[3]["exception"]
    assert records[4]["token"] == MASK and records[4]["turns"] == 3
    assert records[4]["headers"] == {"Authorization": MASK}
    assert records[5]["url"] == f"postgresql://agentbot:{MASK}@db:5432/agentbot"


def test_settings_secrets_are_collected(settings: Settings):
    """Every SecretStr setting, and passwords inside URLs, are masked by exact value."""
    with_password = settings.model_copy(
        update={"redis_url": "redis://:sup3r-s3cret-pw@cache:6379/0"}
    )
    found = secrets_of(with_password)
    assert BOT_TOKEN in found and SIGNING_SECRET in found
    assert "sup3r-s3cret-pw" in found


def test_job_lines_carry_task_user_and_job_and_no_token(
    user: SlackUser, slack: FakeSlack, settings: Settings, tmp_path: Path, restore_logging: None
):
    """From Slack request to forked job horse: context on every line, secrets masked."""
    log_file = tmp_path / "agentbot.log"
    with log_file.open("a", buffering=1) as stream:
        configure("DEBUG", secrets_of(settings), stream=stream, json=True)
        user.command("run fix the discount calculation")
        worker = AgentbotWorker(
            [Queue(name, connection=user.services.redis) for name in ("default", "plan")],
            connection=user.services.redis,
        )
        # RQ logs each job's description, arguments included: a token passed to a job
        # (here, one that fails) would otherwise be printed in full.
        Queue("default", connection=user.services.redis).enqueue("builtins.int", BOT_TOKEN)
        worker.work(burst=True, logging_level="INFO")
        approving_from = stream.tell()
        user.command("approve T-1", user=APPROVER)

    text = log_file.read_text()
    assert BOT_TOKEN not in text and SIGNING_SECRET not in text
    records = lines(text)
    assert any(MASK in json.dumps(r) for r in records)
    # Lines inside T-1's jobs name the task and the job (the approval that follows
    # also names the job it queues, from the web side, so it is left out here).
    in_job = [
        r
        for r in lines(log_file.read_bytes()[:approving_from].decode())
        if r.get("task_id") == "T-1" and r.get("job_id")
    ]
    assert in_job, "no line was logged inside T-1's jobs"
    planned = [r for r in in_job if str(r.get("job_id", "")).startswith("plan-1-")]
    assert any(r["event"].startswith("plan_task done") for r in planned)
    assert all(r.get("user") == REQUESTER for r in planned)
    # Lines about a Slack request, from Bolt's listener threads too, name who sent it.
    listeners = [r for r in records if r["event"].startswith("Running listener")]
    assert [r.get("user") for r in listeners] == [REQUESTER, APPROVER]
    # A job does not inherit context from the worker process around it.
    assert all(r.get("user") in (None, REQUESTER) for r in in_job)


def test_serve_writes_only_json_lines_with_no_secret(
    settings: Settings, slack: FakeSlack, user: SlackUser, tmp_path: Path
):
    """`agentbot serve` at DEBUG: gunicorn's and uvicorn's lines too are JSON; no tokens."""
    port = free_port()
    log_file = tmp_path / "serve.log"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "LOG_LEVEL": "DEBUG",
    }
    with log_file.open("wb") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            cwd=tmp_path,
            stdout=stderr,
            stderr=stderr,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=1)
                    break
                except OSError:
                    assert time.monotonic() < deadline, log_file.read_text()
                    time.sleep(0.2)
            body = user.command_body(f"run fix the discount calculation {SLACK_BOT}").encode()
            stamp = str(int(time.time()))
            signature = SignatureVerifier(SIGNING_SECRET).generate_signature(
                timestamp=stamp, body=body
            )
            request = urllib.request.Request(
                base + "/slack/events",
                data=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Slack-Request-Timestamp": stamp,
                    "X-Slack-Signature": signature,
                },
            )
            assert urllib.request.urlopen(request, timeout=10).status == 200
        finally:
            server.terminate()
            server.wait(timeout=30)

    text = log_file.read_text()
    for secret in (BOT_TOKEN, SIGNING_SECRET, SLACK_BOT):
        assert secret not in text
    records = lines(text)  # every line is JSON, or this fails
    loggers = {r["logger"] for r in records}
    # gunicorn's master and uvicorn's workers alike, and one access line per request.
    assert {"gunicorn.error", "uvicorn.error", "uvicorn.access", "agentbot.slack"} <= loggers
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any("POST /slack/events" in r["event"] and "200" in r["event"] for r in access)
    assert any(r.get("user") == REQUESTER for r in records if r["logger"] == "agentbot.slack")


def test_lines_about_a_request_on_a_task_name_the_task(
    user: SlackUser, slack: FakeSlack, tmp_path: Path, restore_logging: None
):
    """Web-side lines of a click, a modal or a command acting on T-1 carry task_id T-1."""
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    plan = next(m for m in user.thread() if "Plan for T-1" in texts(m))
    log_file = tmp_path / "agentbot.log"
    with log_file.open("a", buffering=1) as stream:
        configure("DEBUG", stream=stream, json=True)
        user.command("status T-1")
        user.click(plan, blocks.REJECT, APPROVER)  # opens the reason modal
        # Bolt opens the modal from its listener thread, after the click is acknowledged.
        modal = slack.wait_for(lambda: slack.views and slack.views[-1])
        user.submit_view(modal, APPROVER, "")  # empty reason: refused
        user.command("run something else entirely")
    records = lines(log_file.read_text())
    listeners = [r for r in records if r["event"].startswith("Running listener")]
    assert [r.get("task_id") for r in listeners] == ["T-1", "T-1", "T-1", None]


def test_a_secret_is_masked_in_its_slack_escaped_form_too() -> None:
    """A secret with `&`, `<` or `>` is masked after Slack escaping turned them into entities."""
    secret = "hunter2&<friends>-k9"
    redactor = Redactor([secret])
    said = blocks.escape(f"the vault password is {secret}, said the log")
    assert redactor.scrub(said) == f"the vault password is {MASK}, said the log"
    assert redactor.scrub(f"raw {secret}") == f"raw {MASK}"


def test_the_task_a_request_names_is_read_as_its_listener_reads_it() -> None:
    """A log line names a task only where the listener would act on one."""

    def click(value: object) -> dict[str, object]:
        return {"type": "block_actions", "actions": [{"action_id": blocks.APPROVE, "value": value}]}

    def modal(metadata: object) -> dict[str, object]:
        view = {"callback_id": blocks.REJECT_VIEW, "private_metadata": metadata}
        return {"type": "view_submission", "view": view}

    assert task_in_request(click("12")) == "T-12"
    assert [task_in_request(click(v)) for v in ("T-12", "0", str(2**31), 12, None)] == [None] * 5
    assert task_in_request(modal("7|C1")) == "T-7"
    assert task_in_request(modal("x|7")) is None
    assert task_in_request({"command": "/agent", "text": "approve t12 looks good"}) == "T-12"
    assert task_in_request({"command": "/agent", "text": "run fix T-3"}) is None
    assert task_in_request({"command": "/agent", "text": "cancel now"}) is None
