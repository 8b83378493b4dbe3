"""`agentbot serve` as operators run it: gunicorn, probes, and Slack over real HTTP."""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk.signature import SignatureVerifier

from bot.server import TOO_LARGE as TOO_LARGE_BODY
from bot.server import too_slow
from bot.web import MAX_SLACK_BODY, TOO_LARGE
from sandbox.fakeslack import FakeSlack
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.services import free_port
from tests.slackclient import SlackUser

CONFIG = """
[[repos]]
name = "acme/calc"
git_url = "{git_url}"
test_command = "python -m pytest -q"

[access]
approvers = ["UAPPROVER"]
"""


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def start_serve(env: dict[str, str], port: int, cwd: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                return process
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError("agentbot serve did not come up")


@pytest.fixture
def serve_env(
    tmp_path: Path, database_url: str, redis_url: str, slack: FakeSlack, sample_repo: Path
) -> dict[str, str]:
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


@pytest.fixture
def server(serve_env: dict[str, str], tmp_path: Path, services: object) -> Iterator[str]:
    port = free_port()
    process = start_serve(serve_env, port, tmp_path)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=20)


def test_probes_report_health_and_readiness(server: str) -> None:
    """/healthz says the process is up; /readyz checks the database and Redis."""
    assert get(server + "/healthz") == (200, '{"status": "ok"}')
    status, body = get(server + "/readyz")
    assert status == 200 and json.loads(body) == {"ready": True, "database": "ok", "redis": "ok"}
    status, body = get(server + "/metrics")
    assert status == 200 and 'agentbot_tasks{state="queued"} 0.0' in body


def test_signed_command_over_http_creates_a_task(
    server: str, user: SlackUser, slack: FakeSlack
) -> None:
    """A slash command posted to /slack/events over HTTP is acknowledged and queued."""
    body = user.command_body("run fix the discount calculation").encode()
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
    request = urllib.request.Request(
        server + "/slack/events",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
        },
    )
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=10) as response:
        reply = json.loads(response.read())
    assert time.monotonic() - started < 3
    assert reply["text"].startswith(":inbox_tray: T-1 queued")
    user.work("default", "plan")
    assert "awaiting approval" in str(user.card().blocks)

    forged = urllib.request.Request(
        server + "/slack/events",
        data=body,
        headers={**request.headers, "X-slack-signature": "v0=bad"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(forged, timeout=10)
    assert caught.value.code == 401


def test_readyz_is_503_when_redis_is_unreachable(serve_env: dict[str, str], tmp_path: Path) -> None:
    """With Redis gone the process stays up but reports not ready, naming Redis."""
    port = free_port()
    env = {**serve_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    process = start_serve(env, port, tmp_path)
    try:
        status, body = get(f"http://127.0.0.1:{port}/readyz")
        payload = json.loads(body)
        assert status == 503 and payload["database"] == "ok"
        assert payload["redis"].startswith("unreachable")
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_an_oversized_body_is_refused_before_it_is_sent(server: str) -> None:
    """A request to /slack/events declaring more than 1 MiB is answered 413 unread."""
    connection = http.client.HTTPConnection(server.removeprefix("http://"), timeout=10)
    connection.putrequest("POST", "/slack/events")
    connection.putheader("Content-Type", "application/x-www-form-urlencoded")
    connection.putheader("Content-Length", str(MAX_SLACK_BODY + 1))
    # Only the first kilobyte is sent: a server that read the declared length would
    # still be waiting for the rest.
    connection.endheaders(b"payload=" + b"x" * 1024)
    response = connection.getresponse()
    assert (response.status, response.read().decode()) == (413, TOO_LARGE)
    connection.close()


# Short enough to keep these tests quick, long enough that a loaded machine answers
# /healthz well inside it.
BODY_TIMEOUT = 4.0


@pytest.fixture
def impatient_server(
    serve_env: dict[str, str], tmp_path: Path, services: object
) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {**serve_env, "REQUEST_BODY_TIMEOUT": str(BODY_TIMEOUT)}
    process = start_serve(env, port, tmp_path)
    yield "127.0.0.1", port
    process.terminate()
    process.wait(timeout=20)


def open_slow_post(address: tuple[str, int], declared: int, first: bytes) -> socket.socket:
    """A POST to /slack/events that declares `declared` bytes and sends only `first`."""
    sock = socket.create_connection(address, timeout=10)
    sock.sendall(
        b"POST /slack/events HTTP/1.1\r\nHost: agentbot\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: " + str(declared).encode() + b"\r\n\r\n" + first
    )
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends until it closes the connection (fails if it never does)."""
    sock.settimeout(timeout)
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def status_and_body(response: bytes) -> tuple[int, str]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode()


def test_healthz_answers_while_fifty_clients_trickle_their_bodies(
    impatient_server: tuple[str, int],
) -> None:
    """50 clients sending a body a byte at a time hold no thread: /healthz answers
    at once, and each trickler is answered 408 at the deadline, counted from its
    headers, although it kept sending almost until then."""
    address = impatient_server
    slow = [open_slow_post(address, 100_000, b"payload=") for _ in range(50)]
    opened = time.monotonic()
    stop = threading.Event()

    def trickle() -> None:
        # Stops a second before the deadline: a byte sent after the server's close
        # would be answered with a reset that can discard the 408 unread.
        while not stop.wait(0.25) and time.monotonic() - opened < BODY_TIMEOUT - 1:
            for sock in slow:
                sock.send(b"x")

    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        time.sleep(0.5)
        started = time.monotonic()
        connection = http.client.HTTPConnection(*address, timeout=BODY_TIMEOUT)
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        health = (response.status, response.read().decode())
        health_seconds = time.monotonic() - started
        still_trickling = not select.select(slow, [], [], 0)[0] and trickler.is_alive()
        connection.close()
        replies = [status_and_body(read_until_closed(s, BODY_TIMEOUT + 10)) for s in slow]
        answered_after = time.monotonic() - opened
    finally:
        stop.set()
        trickler.join()
        for sock in slow:
            sock.close()
    assert health == (200, '{"status": "ok"}')
    # Well under the deadline the tricklers are held to, and before any of them ended.
    assert health_seconds < BODY_TIMEOUT / 2
    assert still_trickling
    assert replies == [(408, too_slow(BODY_TIMEOUT))] * len(slow)
    # A wait that restarted on each byte would still be running a deadline after the
    # last one.
    assert answered_after < BODY_TIMEOUT + 2


def test_a_body_that_stops_short_is_answered_408_and_closed(
    impatient_server: tuple[str, int],
) -> None:
    """A POST declaring 1000 bytes that sends 10 gets 408 at the deadline, then EOF."""
    sock = open_slow_post(impatient_server, 1000, b"payload=xx")
    started = time.monotonic()
    try:
        # Fails with a timeout if the server still holds the connection after the
        # deadline and a margin for a loaded machine.
        response = read_until_closed(sock, BODY_TIMEOUT + 5)
    finally:
        sock.close()
    elapsed = time.monotonic() - started
    assert status_and_body(response) == (408, too_slow(BODY_TIMEOUT))
    assert BODY_TIMEOUT - 0.5 <= elapsed < BODY_TIMEOUT + 5


def test_a_chunked_body_past_one_mebibyte_is_refused_413(
    impatient_server: tuple[str, int],
) -> None:
    """A body with no declared length is read only up to 1 MiB: past that, 413."""
    sock = socket.create_connection(impatient_server, timeout=10)
    chunk = b"x" * 65536
    try:
        sock.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: agentbot\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(MAX_SLACK_BODY // len(chunk)):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        # One byte past the limit, and nothing after it: bytes still arriving once the
        # server has answered and closed would be met with a reset.
        sock.sendall(b"1\r\nx\r\n")
        response = read_until_closed(sock, BODY_TIMEOUT + 5)
    finally:
        sock.close()
    assert status_and_body(response) == (413, TOO_LARGE_BODY)
