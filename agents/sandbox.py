"""The sandbox every agent process and every run of a repo's test command goes through.

The coding agent reads text anyone can write, and the test command runs code the agent
wrote, so neither runs with the bot's files, processes or network around it. The bot
(not the agent's own settings, which the agent can change) starts each of them under
bubblewrap (`bwrap`, Debian's `bubblewrap`):

- files: the task's worktree and its agent's HOME are writable, `/tmp` is a
  fresh tmpfs, the system and the toolchains are read-only, and nothing else of the
  host exists: not the bot's working directory, its configuration, `.env`, data or
  database files, nor other tasks' worktrees;
- processes: a PID namespace of its own with a fresh `/proc`, so no other process's
  environment (the worker's, tini's) can be read; all capabilities dropped;
- network: a network namespace of its own, with only a loopback of its own. When a run
  may reach anything, an `EgressProxy` in the worker listens on a unix socket bound
  into the sandbox, `socat` inside turns it into `127.0.0.1:3128`, and `HTTPS_PROXY` /
  `HTTP_PROXY` point there. The proxy lets through exactly the `host:port` pairs of the
  run's allowlist: Redis, PostgreSQL, the bot's own ports, the cloud metadata address
  and every other loopback port stay out of reach.

A sandbox that cannot start fails the run with a message saying why and how to fix it;
`[agent] sandbox = "off"` is the only way around it, and an explicit one.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import re
import select
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

from agents.base import AgentError

log = logging.getLogger(__name__)

# The system and its toolchains, read-only. A path that is a symlink on the host (`/bin`
# -> `usr/bin` on merged-/usr systems) is recreated as that symlink.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
# Files under those that are nobody's business inside: they read as empty.
MASKED_SYSTEM_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/sudoers")
PROXY_PORT = 3128
PROXY_SOCKET = "/run/agentbot/egress.sock"
# The instance metadata service (AWS, GCP, Azure) and the rest of link-local space:
# refused even when a name on the allowlist resolves there.
LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
HEAD_LIMIT = 64 * 1024
CONNECT_TIMEOUT = 10.0
POLL_SECONDS = 0.02
FIX_HINT = (
    "Install bubblewrap and socat (Debian: `apt-get install bubblewrap socat`) and allow "
    "unprivileged user namespaces (sysctl `kernel.unprivileged_userns_clone=1`; in a "
    'container, a seccomp profile that permits them), or set `[agent] sandbox = "off"` '
    "to run agents and tests unsandboxed."
)
_ENDPOINT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>\d+)$")
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class SandboxError(AgentError):
    """The sandbox could not start; the message says why and how to fix it."""


@dataclass(frozen=True, order=True)
class Endpoint:
    """One `host:port` a sandboxed run may connect to through the proxy."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoint(text: str) -> Endpoint:
    """`host:port` (or `[v6]:port`) as an `Endpoint`.

    Raises:
        ValueError: For anything else, with a message saying what is expected.
    """
    match = _ENDPOINT.match(text.strip())
    port = int(match["port"]) if match else 0
    if match is None or not 0 < port < 65536:
        raise ValueError(f"{text!r} is not host:port (e.g. pypi.org:443)")
    return Endpoint((match["v6"] or match["host"]).lower(), port)


def _checked_endpoints(entries: tuple[str, ...]) -> tuple[str, ...]:
    for entry in entries:
        parse_endpoint(entry)
    return entries


# A configuration field of `host:port` pairs (an egress allowlist), refused at load,
# naming the field, when one entry is not such a pair.
HostPorts = Annotated[tuple[str, ...], AfterValidator(_checked_endpoints)]


def endpoint_of_url(url: str) -> Endpoint:
    """The `host:port` an HTTP(S) URL connects to (its scheme's port when none is given).

    Raises:
        ValueError: When the URL names no host.
    """
    parts = urlsplit(url.strip())
    if not parts.hostname or parts.scheme not in ("http", "https"):
        raise ValueError(f"{url!r} is not an http(s) URL")
    return Endpoint(parts.hostname.lower(), parts.port or (443 if parts.scheme == "https" else 80))


@dataclass(frozen=True)
class Launch:
    """A command as it is started: the argv and environment, and what proves it started."""

    argv: list[str]
    env: dict[str, str]
    pass_fds: tuple[int, ...] = ()
    sandboxed: bool = False
    _started: int | None = None

    def verify(self, output: str = "") -> None:
        """Raise when the sandbox never came up (call after the process has ended).

        Args:
            output: What the process printed; bubblewrap's own complaint is taken from it.

        Raises:
            SandboxError: When the command never started inside the sandbox.
        """
        if self._started is None:
            return
        os.set_blocking(self._started, False)
        try:
            came_up = bool(os.read(self._started, 1))
        except BlockingIOError:
            came_up = False
        if came_up:
            return
        said = [line.strip() for line in output.splitlines() if line.startswith("bwrap:")]
        reason = said[-1] if said else "bubblewrap exited before the command started"
        raise SandboxError(f"The sandbox could not start ({reason}). {FIX_HINT}")


@dataclass(frozen=True)
class Sandbox:
    """How agent processes and test runs are contained; one per kind of run.

    Attributes:
        enabled: False only for `[agent] sandbox = "off"`: commands run as they are.
        read_only: Toolchain paths besides the system ones (the Python the bot runs on,
            the agent CLI's installation), bound read-only.
        hidden: The bot's own files (configuration, `.env`, data directory): masked
            wherever a bound path would otherwise show them.
        egress: The `host:port` pairs this kind of run may reach; none means no network.
        writable: Further directories the run may write besides its worktree and HOME
            (a shared build cache, say); empty by default.
        lent: Files shown read-only at another path, as `(host path, path inside)`: a
            stored CLI login lent into the task's HOME, say.
        bwrap: bubblewrap's executable.
        forwarder: socat's executable, which carries the proxy into the sandbox.
    """

    enabled: bool = True
    read_only: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    egress: frozenset[Endpoint] = field(default_factory=frozenset)
    writable: tuple[str, ...] = ()
    lent: tuple[tuple[str, str], ...] = ()
    bwrap: str = "bwrap"
    forwarder: str = "socat"

    def allowing(self, endpoints: Iterable[Endpoint]) -> Sandbox:
        """The same sandbox with more `host:port` pairs on its egress allowlist."""
        return replace(self, egress=self.egress | frozenset(endpoints))

    def with_read_only(self, paths: Iterable[str]) -> Sandbox:
        """The same sandbox with more toolchain paths visible, read-only."""
        return replace(self, read_only=(*self.read_only, *paths))

    def lending(self, source: str, target: str) -> Sandbox:
        """The same sandbox showing the file `source` read-only at `target` inside."""
        return replace(self, lent=(*self.lent, (source, target)))

    def problem(self) -> str | None:
        """Why this sandbox cannot start on this machine, or None when it can.

        Starts one `true` inside it, with an egress proxy as an agent run has, so a
        missing socat or refused user namespaces show before any task needs them.
        """
        if not self.enabled:
            return None
        probe = self.allowing([Endpoint("127.0.0.1", 9)])
        with tempfile.TemporaryDirectory(prefix="agentbot-probe-") as scratch:
            try:
                with probe.launch(
                    ["/bin/true"], workspace=Path(scratch), home=None, env={"PATH": os.defpath}
                ) as launch:
                    done = subprocess.run(
                        launch.argv,
                        env=launch.env,
                        pass_fds=launch.pass_fds,
                        capture_output=True,
                        text=True,
                        timeout=30,
                        check=False,
                    )
                    launch.verify(done.stdout + done.stderr)
            except (SandboxError, subprocess.TimeoutExpired) as exc:
                return str(exc)
        return None

    @contextlib.contextmanager
    def launch(
        self,
        argv: Sequence[str],
        *,
        workspace: Path,
        home: str | None,
        env: Mapping[str, str],
    ) -> Iterator[Launch]:
        """The argv and environment that run `argv` inside this sandbox.

        While the context is open, the run's egress proxy (if it may reach anything)
        listens in this process; it stops on leaving.

        Args:
            argv: The command, never passed through a shell here.
            workspace: The task's worktree: writable, and the working directory.
            home: The agent's private HOME: writable; None when the run has none.
            env: The complete environment the command was given; only the proxy
                variables and TMPDIR change.

        Raises:
            SandboxError: When bubblewrap or socat is missing.
            FileNotFoundError: When the command itself is not found, as for a bare
                process (inside, only its shell would say so).
        """
        if not self.enabled:
            yield Launch(argv=list(argv), env=dict(env))
            return
        if shutil.which(argv[0], path=env.get("PATH")) is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
        bwrap = _executable(self.bwrap, "bubblewrap (bwrap)")
        forwarder = _executable(self.forwarder, "socat") if self.egress else None
        env = {k: v for k, v in env.items() if k.upper() not in _PROXY_VARIABLES}
        env["TMPDIR"] = "/tmp"
        read, write = os.pipe()
        try:
            with contextlib.ExitStack() as stack:
                socket_path = None
                if forwarder is not None:
                    proxy = stack.enter_context(EgressProxy(self.egress))
                    socket_path = proxy.socket_path
                    url = f"http://127.0.0.1:{PROXY_PORT}"
                    env.update({name: url for name in ("HTTPS_PROXY", "HTTP_PROXY")})
                    env.update({name.lower(): url for name in ("HTTPS_PROXY", "HTTP_PROXY")})
                args = bwrap_argv(
                    argv,
                    bwrap=bwrap,
                    mounts=self._mounts(workspace, home, forwarder),
                    workspace=workspace,
                    started_fd=write,
                    proxy_socket=socket_path,
                    forwarder=forwarder,
                )
                yield Launch(argv=args, env=env, pass_fds=(write,), sandboxed=True, _started=read)
        finally:
            os.close(read)
            with contextlib.suppress(OSError):
                os.close(write)

    def _mounts(self, workspace: Path, home: str | None, forwarder: str | None) -> list[str]:
        """bubblewrap's mount options, in order: later ones cover earlier ones."""
        args: list[str] = []
        for system in SYSTEM_PATHS:
            path = Path(system)
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), system]
            elif path.exists():
                args += ["--ro-bind", system, system]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run"]
        toolchains = [*self.read_only, *_python_prefixes()]
        if forwarder is not None:
            toolchains.append(str(Path(forwarder).resolve().parent))
        bound = [*SYSTEM_PATHS]
        for item in dict.fromkeys(toolchains):
            path = Path(item).resolve()
            if path.exists() and not _within(path, bound):
                args += ["--ro-bind", str(path), str(path)]
                bound.append(str(path))
        git_dirs = _git_dirs(workspace)
        if git_dirs is not None:
            # Git in the worktree reads the shared repository; it never writes it (the
            # bot commits), and no other task's worktree metadata shows.
            common, own = git_dirs
            args += ["--ro-bind", str(common), str(common)]
            args += ["--tmpfs", str(common / "worktrees"), "--ro-bind", str(own), str(own)]
        resolved = workspace.resolve()
        writable = [*self.writable, *([home] if home else []), str(resolved)]
        for item in writable:
            args += ["--bind", item, item]
        for source, target in self.lent:
            args += ["--ro-bind", source, target]
        for item in (*MASKED_SYSTEM_FILES, *self.hidden):
            path = Path(item).absolute()
            if not path.exists() or not _within(path, [*bound, *writable]):
                continue
            if _within(path, writable) or any(Path(w).is_relative_to(path) for w in writable):
                continue  # the run's own files; masking them would hide its work
            args += (
                ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
            )
        return args


def bwrap_argv(
    argv: Sequence[str],
    *,
    bwrap: str,
    mounts: Sequence[str],
    workspace: Path,
    started_fd: int,
    proxy_socket: str | None = None,
    forwarder: str | None = None,
) -> list[str]:
    """The bubblewrap command line that runs `argv` with `mounts` and no network.

    Inside, a shell reports on `started_fd` that the sandbox is up, starts the proxy
    forwarder when there is a proxy (and waits until it listens), then becomes `argv`.
    """
    args = [
        bwrap,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--hostname",
        "sandbox",
        *mounts,
    ]
    # Through /proc: a shell's own redirections reach only descriptors 0-9.
    script = f"printf 1 > /proc/self/fd/{started_fd}; "
    tail: list[str] = []
    if proxy_socket is not None and forwarder is not None:
        args += ["--ro-bind", proxy_socket, PROXY_SOCKET]
        # 0100007F:0C38 is 127.0.0.1:3128 in /proc/net/tcp, 0A is LISTEN. The wait uses
        # shell builtins only: a fork per look would cost more than socat's start.
        listening = f"0100007F:{PROXY_PORT:04X}0A"
        script += (
            f'"$1" TCP-LISTEN:{PROXY_PORT},bind=127.0.0.1,fork,reuseaddr '
            f"UNIX-CONNECT:{PROXY_SOCKET} & shift; "
            'up() { while read -r _ a _ s _; do [ "$a$s" = "'
            + listening
            + '" ] && return 0; done < /proc/net/tcp; return 1; }; '
            # A forwarder that never listens ends the run rather than hanging it.
            'i=0; until up; do i=$((i+1)); [ "$i" -lt 100000 ] || exit 125; done; '
        )
        tail = [forwarder]
    script += 'exec "$@"'
    args += ["--chdir", str(workspace.resolve()), "--", "/bin/sh", "-c", script, "sh", *tail]
    return args + list(argv)


def _executable(name: str, what: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SandboxError(f"The sandbox could not start: {what} is not installed. {FIX_HINT}")
    return found


def _python_prefixes() -> list[str]:
    """The Python the bot runs on and its environment: test commands often run in it."""
    return [sys.prefix, sys.base_prefix, sys.exec_prefix]


def _within(path: Path, roots: Iterable[str]) -> bool:
    return any(path == Path(root) or path.is_relative_to(root) for root in roots)


def _git_dirs(workspace: Path) -> tuple[Path, Path] | None:
    """The shared repository and this worktree's own git directory, if it is a worktree.

    The worktree's `.git` file is the agent's to change, so it is believed only when
    the directory it names points back at this worktree: the bot wrote that file, and
    no sandboxed run can write there.
    """
    dot_git = workspace / ".git"
    try:
        if not dot_git.is_file():
            return None
        text = dot_git.read_text(encoding="utf-8").strip()
        if not text.startswith("gitdir:"):
            return None
        own = (workspace / text.removeprefix("gitdir:").strip()).resolve()
        back = Path((own / "gitdir").read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        return None
    if back.resolve() != dot_git.resolve() or own.parent.name != "worktrees":
        return None
    return own.parent.parent, own


# -- the egress proxy ---------------------------------------------------------------------


class EgressProxy:
    """An HTTP proxy on a unix socket that connects only to allowlisted `host:port` pairs.

    It understands `CONNECT host:port` (HTTPS, and any client that tunnels) and plain
    HTTP requests in absolute form (`GET http://host:port/path`). Anything else, and any
    destination not on the list, gets `403` and is logged by `host:port` alone.

    The proxy is a small threading server rather than a library: what it must do is a
    strict allowlist by host and port over a unix socket, which general proxies
    (proxy.py, mitmproxy) reach only through plugins and a TCP listener of their own.
    """

    def __init__(self, allow: Iterable[Endpoint]) -> None:
        self.allow = frozenset(allow)
        self._directory = tempfile.mkdtemp(prefix="agentbot-egress-")
        self.socket_path = str(Path(self._directory) / "egress.sock")
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> EgressProxy:
        server = _Server(self.socket_path, _ProxyHandler)
        server.allow = self.allow
        self._server = server
        # `shutdown` waits for the loop to notice: a short poll keeps that off each run.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_tunnels()
        shutil.rmtree(self._directory, ignore_errors=True)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow: frozenset[Endpoint] = frozenset()

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.tunnels: set[socket.socket] = set()
        self.lock = threading.Lock()

    def close_tunnels(self) -> None:
        with self.lock:
            for sock in self.tunnels:
                with contextlib.suppress(OSError):
                    sock.close()
            self.tunnels.clear()


class _ProxyHandler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        client: socket.socket = self.request
        head = _read_head(client)
        if head is None:
            return
        head_bytes, rest = head
        request_line = head_bytes.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3:
            _refuse(client, 400, "not an HTTP proxy request")
            return
        method, target, version = parts
        try:
            if method == "CONNECT":
                endpoint = parse_endpoint(target)
                path = ""
            else:
                endpoint = endpoint_of_url(target)
                split = urlsplit(target)
                path = (split.path or "/") + (f"?{split.query}" if split.query else "")
        except ValueError:
            _refuse(client, 400, "not an HTTP proxy request")
            return
        if endpoint not in self.server.allow:
            log.info("sandbox egress refused: %s", endpoint)
            _refuse(client, 403, f"{endpoint} is not on this run's egress allowlist")
            return
        upstream = _connect(endpoint)
        if upstream is None:
            _refuse(client, 502, f"{endpoint} could not be reached")
            return
        with self.server.lock:
            self.server.tunnels.update((client, upstream))
        try:
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                upstream.sendall(rest)
            else:
                _, headers = head_bytes.split(b"\r\n", 1)
                line = f"{method} {path} {version}\r\n".encode("latin-1")
                upstream.sendall(line + _one_request(headers) + rest)
            _relay(client, upstream)
        finally:
            with self.server.lock:
                self.server.tunnels.difference_update((client, upstream))
            upstream.close()


def _read_head(client: socket.socket) -> tuple[bytes, bytes] | None:
    data = b""
    client.settimeout(CONNECT_TIMEOUT)
    while b"\r\n\r\n" not in data:
        try:
            chunk = client.recv(4096)
        except OSError:
            return None
        if not chunk or len(data) > HEAD_LIMIT:
            return None
        data += chunk
    client.settimeout(None)
    head, rest = data.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n", rest


def _one_request(headers: bytes) -> bytes:
    """A plain-HTTP request's headers, asking the server to close after answering.

    The proxy rewrites only the first request line of a connection and then relays
    bytes; a client that kept the connection alive would send its next request with the
    proxy's absolute URL to the server, which answers 404. Closing makes each request
    come through the proxy again, checked against the allowlist like the first.
    """
    lines = headers.split(b"\r\n")
    hop = (b"connection:", b"proxy-connection:", b"keep-alive:")
    kept = [line for line in lines[:-2] if not line.lower().startswith(hop)]
    return b"\r\n".join([*kept, b"Connection: close", b"", b""])


def _refuse(client: socket.socket, status: int, reason: str) -> None:
    body = f"Agentbot sandbox: {reason}.\n".encode()
    words = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    with contextlib.suppress(OSError):
        client.sendall(
            f"HTTP/1.1 {status} {words}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )


def _connect(endpoint: Endpoint) -> socket.socket | None:
    """A connection to `endpoint`, never to a link-local address it was not named by."""
    try:
        literal = ipaddress.ip_address(endpoint.host)
    except ValueError:
        literal = None
    try:
        found = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    except OSError:
        return None
    for family, kind, proto, _, address in found:
        ip = ipaddress.ip_address(address[0])
        if ip != literal and any(ip in net for net in LINK_LOCAL):
            log.info("sandbox egress refused: %s resolves to %s", endpoint, ip)
            continue
        sock = socket.socket(family, kind, proto)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            continue
        sock.settimeout(None)
        return sock
    return None


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until both sides are done."""
    open_ends = {a: b, b: a}
    while open_ends:
        try:
            ready, _, _ = select.select(list(open_ends), [], [])
        except (OSError, ValueError):
            return
        for source in ready:
            try:
                chunk = source.recv(65536)
            except OSError:
                chunk = b""
            target = open_ends[source]
            if chunk:
                try:
                    target.sendall(chunk)
                except OSError:
                    return
                continue
            del open_ends[source]
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)


def tool_paths(command: str, search_path: str | None = None) -> list[str]:
    """What a command needs visible to run: its directory and, for an npm install, its package.

    Args:
        command: A path or a name found on `search_path`.
        search_path: PATH to look the name up on.

    Returns:
        Directories to bind read-only; empty when the command is not found (the run
        then fails with the CLI's own "not found").
    """
    found = shutil.which(command, path=search_path)
    if found is None:
        return []
    launcher = Path(found).absolute()
    target = launcher.resolve()
    paths = [str(launcher.parent)]
    package = next(
        (parent for parent in target.parents if (parent / "package.json").is_file()), None
    )
    if package is not None and "node_modules" in package.parts:
        paths.append(str(package))
    else:
        paths.append(str(target.parent))
    return paths
