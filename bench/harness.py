"""Shared setup for the benchmarks: the real server stack on loopback, and measuring tools.

`Stack` brings up what `agentbot serve` and `agentbot worker` run against in
production — a private redis-server, a fresh PostgreSQL database migrated to head, a
fake Slack Web API, a sample repository and a configuration file — and starts the
real processes (`python -m bot.cli serve …`) with the environment an operator would
give them. Everything is torn down, and the database dropped, when the stack closes.

The benchmarks import this module as `harness` (they run as scripts from `bench/`).
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from redis import Redis
from rq import Queue, Worker
from slack_sdk.signature import SignatureVerifier

from jobs.db import Database, migrate
from sandbox.fakeslack import FakeSlack
from sandbox.sample import make_sample_repo

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-token"
REQUESTER = "UBENCHREQUESTER"
APPROVER = "UBENCHAPPROVER"
CHANNEL = "CBENCH"
REPO = "acme/calc"
# The sample repo's script has a scenario for descriptions mentioning "discount": a
# real failing test, then the real fix, so the whole lifecycle runs to a green suite.
FIXABLE = "fix the discount calculation"

CONFIG = """\
[[repos]]
name = "{repo}"
git_url = "{git_url}"
default_branch = "main"
test_command = "python -m pytest -q"

[access]
requesters = ["*"]
approvers = ["{approver}"]

[agent]
kind = "scripted"
workspace_dir = "{workspaces}"

[jobs]
max_retries = 0

# One requester sends every measured request: the load is the point, not a flood.
[limits]
open_tasks_per_requester = 1000000
open_tasks_total = 1000000
"""


# -- figures ------------------------------------------------------------------------------


def percentiles(samples: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99/max (and the mean) of samples in seconds, as milliseconds."""
    if not samples:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}
    ordered = sorted(samples)

    def at(share: float) -> float:
        # Nearest-rank: the smallest sample with at least `share` of them at or below it.
        rank = max(1, -(-len(ordered) * share // 1))
        return ordered[int(rank) - 1]

    return {
        "p50_ms": round(at(0.50) * 1000, 2),
        "p95_ms": round(at(0.95) * 1000, 2),
        "p99_ms": round(at(0.99) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpus": os.cpu_count(),
        # Other work on the machine shows up in every figure; say how busy it was.
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def write_results(name: str, results: dict[str, Any]) -> Path:
    """Write `bench/results/<name>.json` with the machine and time added; returns the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **results,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def fmt_ms(value: float | None) -> str:
    """A millisecond figure for a table cell."""
    return "-" if value is None else f"{value:.1f} ms"


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- memory -------------------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    """Direct children of a process."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and PSS of one process, in KiB (PSS shares copy-on-write pages fairly)."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return {"rss_kib": rss, "pss_kib": pss}


def process_tree_memory(pid: int) -> dict[str, Any]:
    """Memory of a process and every descendant, each and in total."""
    processes: list[dict[str, Any]] = []
    pending = [pid]
    while pending:
        current = pending.pop(0)
        try:
            command = Path(f"/proc/{current}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        processes.append({"pid": current, "command": command.strip()[:120], **memory_kib(current)})
        pending += children_of(current)
    return {
        "processes": processes,
        "rss_mib": round(sum(p["rss_kib"] for p in processes) / 1024, 1),
        "pss_mib": round(sum(p["pss_kib"] for p in processes) / 1024, 1),
    }


# -- Slack requests -----------------------------------------------------------------------


class Signer:
    """Builds signed `/agent` deliveries the way Slack's servers send them."""

    def __init__(
        self, secret: str = SIGNING_SECRET, response_url: str = "http://127.0.0.1/"
    ) -> None:
        self.verifier = SignatureVerifier(secret)
        self.response_url = response_url

    def command(self, text: str, user: str = REQUESTER, channel: str = CHANNEL) -> bytes:
        """The form body of `/agent <text>`, with a trigger id no one used before."""
        return urlencode(
            {
                "token": "legacy",
                "team_id": "TBENCH",
                "team_domain": "bench",
                "channel_id": channel,
                "channel_name": "bench",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/agent",
                "text": text,
                "api_app_id": "AAGENTBOT",
                "response_url": self.response_url,
                "trigger_id": f"bench-{uuid.uuid4().hex}",
            }
        ).encode()

    def headers(self, body: bytes) -> dict[str, str]:
        """Slack's signature headers for a body, signed now."""
        timestamp = str(int(time.time()))
        signature = self.verifier.generate_signature(timestamp=timestamp, body=body)
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": str(signature),
        }


@dataclass
class Reply:
    """One answered request."""

    status: int
    body: bytes
    seconds: float


class Client:
    """One persistent HTTP/1.1 connection to a server on loopback."""

    def __init__(self, port: int, signer: Signer, timeout: float = 10.0) -> None:
        self.port = port
        self.signer = signer
        self.timeout = timeout
        self.connection = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)

    def post(self, body: bytes, path: str = "/slack/events", *, reconnect: bool = False) -> Reply:
        """Sign and send a body; the clock runs from sending to the last byte of the reply.

        Args:
            body: The request body.
            path: Where to post it.
            reconnect: Try once more on a fresh connection when the server had closed
                this one (an idle keep-alive connection times out after a few seconds).
                Off under load, where a failed connection is an error to count.

        Raises:
            OSError, http.client.HTTPException: The connection failed (it is replaced).
        """
        headers = self.signer.headers(body)
        started = time.perf_counter()
        try:
            self.connection.request("POST", path, body, headers)
            response = self.connection.getresponse()
            data = response.read()
        except (ConnectionError, http.client.RemoteDisconnected):
            self.connection.close()
            self.connection = self._connect()
            if not reconnect:
                raise
            return self.post(body, path)
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = self._connect()
            raise
        return Reply(response.status, data, time.perf_counter() - started)

    def command(self, text: str, user: str = REQUESTER) -> Reply:
        """Send `/agent <text>` as `user` (reconnecting if the idle connection was closed)."""
        return self.post(self.signer.command(text, user), reconnect=True)

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


@dataclass
class Load:
    """What a load run saw."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    replies: list[bytes] = field(default_factory=list)
    wall_seconds: float = 0.0
    stopped_by_time: bool = False

    @property
    def sent(self) -> int:
        """Requests answered or failed."""
        return len(self.latencies) + self.errors

    def summary(self) -> dict[str, Any]:
        """Latency percentiles, errors and rate, for the results file."""
        rate = self.sent / self.wall_seconds if self.wall_seconds else 0.0
        return {
            "requests": self.sent,
            "ok": len(self.latencies),
            "errors": self.errors,
            "error_samples": self.error_samples[:5],
            "wall_seconds": round(self.wall_seconds, 3),
            "requests_per_second": round(rate, 1),
            "stopped_by_time": self.stopped_by_time,
            **percentiles(self.latencies),
        }


def run_load(
    port: int,
    bodies: Sequence[bytes],
    *,
    concurrency: int,
    max_seconds: float,
    signer: Signer,
    accept: Callable[[Reply], bool],
) -> Load:
    """Send every body once from `concurrency` threads, each on its own connection.

    Bounded by count (each body once) and by time (no request starts after
    `max_seconds`). A reply `accept` refuses, a non-200 status, or a failed
    connection counts as an error.
    """
    load = Load()
    lock = threading.Lock()
    indexes = itertools.count()
    started = time.perf_counter()
    deadline = started + max_seconds

    def client_thread() -> None:
        client = Client(port, signer)
        try:
            while True:
                with lock:
                    index = next(indexes)
                if index >= len(bodies):
                    return
                if time.perf_counter() > deadline:
                    load.stopped_by_time = True
                    return
                try:
                    reply = client.post(bodies[index])
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        load.errors += 1
                        load.error_samples.append(f"{type(exc).__name__}: {exc}")
                    continue
                with lock:
                    if reply.status == 200 and accept(reply):
                        load.latencies.append(reply.seconds)
                        load.replies.append(reply.body)
                    else:
                        load.errors += 1
                        load.error_samples.append(f"HTTP {reply.status}: {reply.body[:200]!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=client_thread) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max_seconds + 30)
    load.wall_seconds = time.perf_counter() - started
    return load


def reply_text(reply: Reply) -> str:
    """The text of an acknowledgement (empty if it had none)."""
    try:
        return str(json.loads(reply.body or b"{}").get("text", ""))
    except ValueError:
        return ""


# -- processes ----------------------------------------------------------------------------


@dataclass
class Process:
    """A process the stack started, with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def tail(self, lines: int = 20) -> str:
        """The end of its log, for a failure message."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (a graceful stop for gunicorn and RQ), then SIGKILL if it lingers."""
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll until `predicate()` holds.

    Raises:
        TimeoutError: Naming `what` when it does not happen in time.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def answers_http(port: int, path: str = "/healthz") -> bool:
    """Whether something answers HTTP on the port (any status)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


# -- the stack ----------------------------------------------------------------------------


class Stack:
    """Redis, PostgreSQL, fake Slack, a sample repo and a config, for one benchmark run."""

    def __init__(self, postgres_admin_url: str = POSTGRES_ADMIN_URL) -> None:
        self.postgres_admin_url = postgres_admin_url
        self.tmp = Path(tempfile.mkdtemp(prefix="agentbot-bench-"))
        self.database_name = f"agentbot_bench_{os.getpid()}"
        self.database_url = postgres_admin_url.rsplit("/", 1)[0] + f"/{self.database_name}"
        self.processes: list[Process] = []
        self._redis_process: subprocess.Popen[bytes] | None = None
        self.redis_url = ""
        self.slack = FakeSlack(token=BOT_TOKEN)
        self.signer = Signer(response_url=self.slack.url + "response/none")
        self._db: Database | None = None
        self._redis: Redis | None = None

    # setup and teardown

    def __enter__(self) -> Stack:
        try:
            self._start_redis()
            self._create_database()
            self.slack.start()
            sample = make_sample_repo(self.tmp / "remote" / "calc.git")
            self.config_path = self.tmp / "agentbot.toml"
            self.config_path.write_text(
                CONFIG.format(
                    repo=REPO,
                    git_url=sample,
                    approver=APPROVER,
                    workspaces=self.tmp / "workspaces",
                )
            )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every process, drop the database, remove the scratch directory."""
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self._db is not None:
            self._db.dispose()
        if self._redis is not None:
            self._redis.close()
        self.slack.stop()
        if self._redis_process is not None:
            self._redis_process.terminate()
            self._redis_process.wait(10)
        try:
            with psycopg.connect(self.postgres_admin_url, autocommit=True) as connection:
                connection.execute(f"DROP DATABASE IF EXISTS {self.database_name} WITH (FORCE)")
        except psycopg.Error as exc:
            print(f"could not drop {self.database_name}: {exc}", file=sys.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _start_redis(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        port = free_port()
        self._redis_process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        probe = Redis.from_url(self.redis_url, socket_connect_timeout=0.5)

        def answers() -> bool:
            try:
                return bool(probe.ping())
            except Exception:
                return False

        wait_until(answers, 10, "redis-server")
        probe.close()

    def _create_database(self) -> None:
        with psycopg.connect(self.postgres_admin_url, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {self.database_name} WITH (FORCE)")
            connection.execute(f"CREATE DATABASE {self.database_name}")
        migrate(self.database_url)

    # what the benchmark reads

    @property
    def db(self) -> Database:
        """The benchmark's own connection to the stack's database."""
        if self._db is None:
            self._db = Database(self.database_url)
        return self._db

    @property
    def redis(self) -> Redis:
        """The benchmark's own connection to the stack's Redis."""
        if self._redis is None:
            self._redis = Redis.from_url(self.redis_url)
        return self._redis

    def queue_length(self, name: str) -> int:
        """Jobs waiting on an RQ queue."""
        return int(Queue(name, connection=self.redis).count)

    def scalar(self, sql: str, **params: Any) -> Any:
        """One value from the database."""
        from sqlalchemy import text

        with self.db.engine.connect() as connection:
            return connection.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        """Rows from the database."""
        from sqlalchemy import text

        with self.db.engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())

    # processes

    @property
    def env(self) -> dict[str, str]:
        """The environment an operator gives Agentbot's processes; nothing else leaks in."""
        return {
            # The interpreter's directory first: `python -m pytest` in the sample repo
            # must find the same environment's pytest.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            "HOME": str(self.tmp),
            "LANG": "C.UTF-8",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": self.slack.api_url,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "AGENTBOT_CONFIG": str(self.config_path),
            "LOG_LEVEL": "INFO",
        }

    def spawn(self, name: str, args: list[str], port: int | None = None) -> Process:
        """Start a process from the project's root, logging to the scratch directory."""
        log = self.tmp / f"{name}-{len(self.processes)}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        process = Process(name, popen, log, port)
        self.processes.append(process)
        return process

    def _wait_http(self, process: Process, path: str) -> None:
        assert process.port is not None

        def up() -> bool:
            if process.popen.poll() is not None:
                raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
            return answers_http(process.port or 0, path)

        wait_until(up, 60, process.name, interval=0.2)

    def start_serve(self, workers: int, threads: int) -> Process:
        """`agentbot serve` (gunicorn running uvicorn workers), ready when /healthz answers."""
        port = free_port()
        process = self.spawn(
            "serve",
            [
                sys.executable,
                "-m",
                "bot.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--threads",
                str(threads),
            ],
            port,
        )
        self._wait_http(process, "/healthz")
        return process

    def start_floor(self, workers: int, threads: int) -> Process:
        """The minimal Bolt app under the same gunicorn settings as `agentbot serve`."""
        port = free_port()
        process = self.spawn(
            "floor",
            [
                sys.executable,
                "-m",
                "gunicorn",
                f"bench.minimal_app:asgi_app({threads})",
                "--bind",
                f"0.0.0.0:{port}",
                "--worker-class",
                "uvicorn_worker.UvicornWorker",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--timeout",
                "30",
                "--keep-alive",
                "5",
                "--access-logfile",
                "-",
                "--log-level",
                "warning",
            ],
            port,
        )
        self._wait_http(process, "/")
        return process

    def start_workers(self, count: int, *, timed: bool = True) -> list[Process]:
        """`agentbot worker` processes, ready once each has registered with Redis.

        Args:
            count: How many.
            timed: Run them through `bench/timed_worker.py`, which records how long each
                job and each agent call took (the worker is otherwise the same).
        """
        before = len(Worker.all(connection=self.redis))
        entry = [str(BENCH / "timed_worker.py")] if timed else ["-m", "bot.cli", "worker"]
        started = [self.spawn("worker", [sys.executable, *entry]) for _ in range(count)]

        def registered() -> bool:
            for process in started:
                if process.popen.poll() is not None:
                    raise RuntimeError(f"worker exited:\n{process.tail()}")
            return len(Worker.all(connection=self.redis)) >= before + count

        wait_until(registered, 60, f"{count} workers to register", interval=0.1)
        return started

    def stop(self, processes: Sequence[Process]) -> None:
        """Stop some of the stack's processes (gracefully) and forget them."""
        for process in processes:
            process.stop()
            if process in self.processes:
                self.processes.remove(process)

    def drained(self) -> bool:
        """No job waiting or running on any queue."""
        from rq.registry import StartedJobRegistry

        for name in ("plan", "execute", "default"):
            queue = Queue(name, connection=self.redis)
            if queue.count or StartedJobRegistry(queue=queue).count:
                return False
        return True


@contextmanager
def listening(slack: FakeSlack, listener: Callable[[str, dict[str, Any]], None]) -> Iterator[None]:
    """Call `listener(method, params)` on every fake Slack API call while the block runs."""
    slack.listeners.append(listener)
    try:
        yield
    finally:
        slack.listeners.remove(listener)
