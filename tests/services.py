"""Real backing services for tests: a private redis-server per session."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass

from redis import Redis


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RedisServer:
    """A redis-server process (or an external one, when `process` is None)."""

    url: str
    process: subprocess.Popen[bytes] | None

    @classmethod
    def start(cls) -> RedisServer:
        """Start redis-server on a free port, keeping nothing on disk."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; the test command installs it")
        port = free_port()
        workdir = tempfile.mkdtemp(prefix="agentbot-redis-")
        process = subprocess.Popen(
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
                "--dir",
                workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = cls(url=f"redis://127.0.0.1:{port}/0", process=process)
        server.wait_ready()
        return server

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the server answers PING."""
        deadline = time.monotonic() + timeout
        client = Redis.from_url(self.url, socket_connect_timeout=0.5)
        while True:
            try:
                client.ping()
                client.close()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """Kill and start the same server again on its port (all data is lost)."""
        assert self.process is not None
        args = self.process.args
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # type: ignore[arg-type]
        )
        self.wait_ready()


@dataclass
class PostgresServer:
    """A PostgreSQL cluster of a test's own, which it may stop and start at will.

    Restarting the shared server would pull the database out from under every other
    test run on the machine; a private cluster keeps the failure local.
    """

    datadir: str
    port: int
    bindir: str

    @classmethod
    def create(cls) -> PostgresServer:
        """initdb a fresh cluster (as the `postgres` user when we are root) and start it."""
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = shutil.which("initdb") or (candidates[-1] if candidates else None)
        if initdb is None:
            raise RuntimeError("PostgreSQL server binaries are not installed")
        bindir = os.path.dirname(initdb)
        datadir = tempfile.mkdtemp(prefix="agentbot-pg-")
        if os.geteuid() == 0:
            shutil.chown(datadir, "postgres", "postgres")
        server = cls(datadir=datadir, port=free_port(), bindir=bindir)
        server._as_owner([initdb, "-D", datadir, "-A", "trust", "-U", "postgres", "--no-sync"])
        server.start()
        return server

    def _as_owner(self, args: list[str]) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            prefix + args,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    @property
    def url(self) -> str:
        """URL of the cluster's `postgres` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_owner(
            [
                f"{self.bindir}/pg_ctl",
                "-D",
                self.datadir,
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
                "-l",
                f"{self.datadir}/log",
            ]
        )

    def stop(self) -> None:
        """Stop the server immediately, dropping every connection."""
        self._as_owner([f"{self.bindir}/pg_ctl", "-D", self.datadir, "-m", "immediate", "stop"])

    def destroy(self) -> None:
        """Stop the server and delete its data."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)
