"""`agentbot serve` loads the AWS SDK and the charting library only when a request needs them.

Each gunicorn worker builds the app with `bot.server.make_wsgi_app`; the probe below does
the same in a fresh interpreter, answers signed Slack requests through it, and reports
which heavy libraries ended up loaded. boto3 and botocore alone cost a serve worker
about 10 MiB of memory that no Slack request reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sandbox.fakeslack import FakeSlack
from tests.conftest import BOT_TOKEN, REQUESTER, SIGNING_SECRET
from tests.test_serve import CONFIG

HEAVY = ("boto3", "botocore", "matplotlib", "moto")

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


def test_serve_answers_slack_without_loading_the_aws_sdk_or_matplotlib(
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    slack: FakeSlack,
    sample_repo: Path,
    services: object,
) -> None:
    """Building the app and answering run, list, status and help loads no boto3 or matplotlib."""
    config = tmp_path / "agentbot.toml"
    config.write_text(CONFIG.format(git_url=sample_repo))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "AGENTBOT_CONFIG": str(config),
    }
    texts = ["help", "run fix the discount calculation", "list", "status T-1"]
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, SIGNING_SECRET, REQUESTER, *texts, ",".join(HEAVY)],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    outcome = json.loads(probe.stdout.strip().splitlines()[-1])
    statuses = [status for status, _text in outcome["answers"]]
    assert statuses == ["200 OK"] * len(texts)
    assert outcome["answers"][1][1].startswith(":inbox_tray: T-1 queued")
    assert outcome["heavy"] == []
