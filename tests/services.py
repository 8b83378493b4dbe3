"""Real backing services for tests: a private redis-server per session."""

from __future__ import annotations

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
