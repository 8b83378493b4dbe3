"""serve and the worker load the AWS SDK and the charting library only where they are used.

Each gunicorn worker builds the app with `bot.server.make_wsgi_app`; a probe does the
same in a fresh interpreter, answers signed Slack requests through it, and reports which
heavy libraries ended up loaded. Another wires a worker as `agentbot worker` does: its
horses, forked per job, load what an AWS job needs. boto3 and botocore alone cost each
process about 10 MiB that no Slack request and no idle worker reads; rich, which
structlog would load for console tracebacks no process renders, about 7 MiB more. The
gunicorn master, which only forks and watches the workers, loads no ORM either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sandbox.fakeslack import FakeSlack
from tests.bot.test_serve import CONFIG
from tests.conftest import BOT_TOKEN, REQUESTER, SIGNING_SECRET

# The dev sandbox and what only it uses (moto, fakeredis) are not installed in production.
HEAVY = ("boto3", "botocore", "matplotlib", "moto", "fakeredis", "sandbox", "rich")

PROBE = """
import io, json, sys, time
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from bot.server import make_wsgi_app
from bot.settings import Settings

web = make_wsgi_app(Settings())
verifier = SignatureVerifier(sys.argv[1])
answers = []
for number, text in enumerate(sys.argv[3:-1]):
    body = urlencode({
        "command": "/agent", "text": text, "user_id": sys.argv[2], "channel_id": "CDEV",
        "team_id": "T1", "trigger_id": f"probe-{number}", "response_url": "http://127.0.0.1:9/",
    }).encode()
    timestamp = str(int(time.time()))
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/slack/events", "QUERY_STRING": "",
        "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": timestamp,
        "HTTP_X_SLACK_SIGNATURE": verifier.generate_signature(timestamp=timestamp, body=body),
        "wsgi.input": io.BytesIO(body),
    }
    statuses = []
    reply = b"".join(web(environ, lambda status, headers: statuses.append(status)))
    answers.append([statuses[0], json.loads(reply or b"{}").get("text", "")])
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[-1].split(",")))
print(json.dumps({"answers": answers, "heavy": heavy}))
"""


WORKER_PROBE = """
import json, sys

from bot.runtime import job_context
from bot.services import build_services
from bot.settings import Settings
from jobs.context import install
from jobs.worker import AgentbotWorker
import jobs.work

install(job_context(build_services(Settings())))
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[-1].split(",")))
print(json.dumps({"heavy": heavy, "worker": AgentbotWorker.__name__}))
"""


MASTER_PROBE = """
import json, sys

from bot.cli import _checked_config, _setup_logging, get_settings
from bot.server import serve

# What `agentbot serve` does before gunicorn forks its workers.
settings = get_settings()
_checked_config(settings)
_setup_logging(settings)
print(json.dumps({"loaded": sorted(set(sys.argv[-1].split(",")) & set(sys.modules))}))
"""


def probe_env(
    tmp_path: Path, database_url: str, redis_url: str, slack: FakeSlack, sample_repo: Path
) -> dict[str, str]:
    """The environment an operator gives `agentbot serve` and `agentbot worker`."""
    config = tmp_path / "agentbot.toml"
    config.write_text(CONFIG.format(git_url=sample_repo))
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "AGENTBOT_CONFIG": str(config),
    }


def run_probe(source: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run a probe in a fresh interpreter; its last line of output, as JSON."""
    probe = subprocess.run(
        [sys.executable, "-c", source, *args, ",".join(HEAVY)],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    result: dict[str, Any] = json.loads(probe.stdout.strip().splitlines()[-1])
    return result


def test_serve_answers_slack_without_loading_the_aws_sdk_or_matplotlib(
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    slack: FakeSlack,
    sample_repo: Path,
    services: object,
) -> None:
    """Building the app and answering run, list, status and help loads no boto3 or matplotlib."""
    env = probe_env(tmp_path, database_url, redis_url, slack, sample_repo)
    texts = ["help", "run fix the discount calculation", "list", "status T-1"]
    outcome = run_probe(PROBE, env, SIGNING_SECRET, REQUESTER, *texts)
    statuses = [status for status, _text in outcome["answers"]]
    assert statuses == ["200 OK"] * len(texts)
    assert outcome["answers"][1][1].startswith(":inbox_tray: T-1 queued")
    assert outcome["heavy"] == []


def test_an_idle_worker_loads_neither_the_aws_sdk_nor_matplotlib(
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    slack: FakeSlack,
    sample_repo: Path,
    services: object,
) -> None:
    """The worker process, wired as `agentbot worker` wires it, leaves both to the job horses."""
    env = probe_env(tmp_path, database_url, redis_url, slack, sample_repo)
    assert run_probe(WORKER_PROBE, env) == {"heavy": [], "worker": "AgentbotWorker"}


def test_the_gunicorn_master_loads_no_orm_no_aws_sdk_and_no_rich(
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    slack: FakeSlack,
    sample_repo: Path,
    services: object,
) -> None:
    """What `agentbot serve` loads before it forks: settings checked, no ORM, SDK or rich."""
    env = probe_env(tmp_path, database_url, redis_url, slack, sample_repo)
    probe = subprocess.run(
        [sys.executable, "-c", MASTER_PROBE, ",".join([*HEAVY, "sqlalchemy.orm", "sqlalchemy"])],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    # SQLAlchemy's core stays: the settings load the database driver to fail fast on a typo.
    assert json.loads(probe.stdout.strip().splitlines()[-1]) == {"loaded": ["sqlalchemy"]}
