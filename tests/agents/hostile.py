"""A hostile command: tries each way out of the sandbox and writes down how far it got.

Run as `python hostile.py <report> <targets.json> [<loot>]`; the targets name the bot's files,
the services and the one endpoint the run may reach. Each attempt records `True` when
it got through. Whatever it read it writes into `<loot>` (`loot.txt` by default) in its
working directory, as an agent would before the bot commits the worktree.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.request
from pathlib import Path


def read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def through_proxy(url: str) -> bool:
    """Whether a request via the run's proxy (if it has one) came back 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return 200 <= response.status < 300
    except OSError:
        return False


def tunnel(host: str, port: int) -> bool:
    """Whether the proxy opens a CONNECT tunnel to host:port."""
    proxy = os.environ.get("HTTPS_PROXY")
    if not proxy:
        return False
    address = proxy.rsplit("/", 1)[-1].rsplit(":", 1)
    try:
        with socket.create_connection((address[0], int(address[1])), timeout=2) as sock:
            sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            return b" 200 " in sock.recv(200).split(b"\r\n", 1)[0]
    except OSError:
        return False


def writes(path: str) -> bool:
    try:
        Path(path).write_text("pwned")
        return True
    except OSError:
        return False


def main() -> None:
    report, targets = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
    found: list[str] = []
    got: dict[str, bool] = {}
    for name, path in targets["files"].items():
        text = read(path)
        got[f"read {name}"] = bool(text)
        found.append(text or "")
    climbing = "../" * (len(Path.cwd().parts) - 1) + targets["files"]["env"].lstrip("/")
    text = read(climbing)
    got["read .env by climbing"] = bool(text)
    found.append(text or "")
    environs = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            environs.append(read(f"/proc/{entry.name}/environ") or "")
    found.extend(environs)
    got["a secret in /proc/*/environ"] = any(
        f"{name}=" in environ for environ in environs for name in targets["secret_names"]
    )
    for name, (host, port) in targets["services"].items():
        got[f"connect {name}"] = connects(host, port)
        got[f"tunnel {name}"] = tunnel(host, port)
        got[f"proxy GET {name}"] = through_proxy(f"http://{host}:{port}/")
    model_host, model_port = targets["model"]
    got["model through the proxy"] = through_proxy(f"http://{model_host}:{model_port}/")
    for name, path in targets["outside"].items():
        got[f"write {name}"] = writes(path)
    Path(sys.argv[3] if len(sys.argv) > 3 else "loot.txt").write_text("\n".join(found))
    report.write_text(json.dumps(got))


if __name__ == "__main__":
    main()
