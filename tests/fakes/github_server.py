"""A GitHub API on loopback that records pull requests and comments.

It answers the REST calls and the one GraphQL mutation `agents.github.GitHub` makes,
checks the bearer token, and keeps state so tests can assert what a reviewer would see
on GitHub: the PR, its draft flag, its body, and the comments.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

PULLS = re.compile(r"^/repos/([^/]+)/([^/]+)/pulls$")
PULL = re.compile(r"^/repos/([^/]+)/([^/]+)/pulls/(\d+)$")
COMMENTS = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)/comments$")


@dataclass
class FakePull:
    """A pull request as the fake keeps it."""

    repo: str
    number: int
    head: str
    base: str
    title: str
    body: str
    draft: bool
    node_id: str

    def to_dict(self, base_url: str) -> dict[str, Any]:
        """GitHub's JSON shape of the fields the client reads."""
        return {
            "number": self.number,
            "html_url": f"{base_url}{self.repo}/pull/{self.number}",
            "node_id": self.node_id,
            "draft": self.draft,
            "title": self.title,
            "body": self.body,
            "head": {"ref": self.head},
            "base": {"ref": self.base},
            "state": "open",
        }


@dataclass
class FakeGitHub:
    """State and server of the fake."""

    token: str = "ghp_test_token"
    pulls: list[FakePull] = field(default_factory=list)
    comments: list[tuple[str, int, str]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        """What GITHUB_API_URL should be set to."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeGitHub:
        """Serve in a background thread."""
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def pull(self, repo: str, head: str) -> FakePull | None:
        """The pull request from `head`, if any."""
        with self._lock:
            return next((p for p in self.pulls if p.repo == repo and p.head == head), None)

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        payload: dict[str, Any],
        token: str,
    ) -> tuple[int, Any]:
        with self._lock:
            self.calls.append((method, path))
            if token != self.token:
                return 401, {"message": "Bad credentials"}
            site = "https://github.example/"
            if (match := PULLS.match(path)) is not None:
                repo = f"{unquote(match[1])}/{unquote(match[2])}"
                if method == "GET":
                    head = query.get("head", [""])[0].split(":", 1)[-1]
                    found = [
                        p.to_dict(site)
                        for p in self.pulls
                        if p.repo == repo and (not head or p.head == head)
                    ]
                    return 200, found
                if any(p.repo == repo and p.head == payload.get("head") for p in self.pulls):
                    return 422, {"message": "A pull request already exists"}
                number = len(self.pulls) + 1
                pull = FakePull(
                    repo,
                    number,
                    str(payload["head"]),
                    str(payload["base"]),
                    str(payload["title"]),
                    str(payload.get("body", "")),
                    bool(payload.get("draft")),
                    f"PR_node_{number}",
                )
                self.pulls.append(pull)
                return 201, pull.to_dict(site)
            if (match := PULL.match(path)) is not None and method == "PATCH":
                pull_ = next((p for p in self.pulls if p.number == int(match[3])), None)
                if pull_ is None:
                    return 404, {"message": "Not Found"}
                pull_.title = str(payload.get("title", pull_.title))
                pull_.body = str(payload.get("body", pull_.body))
                return 200, pull_.to_dict(site)
            if (match := COMMENTS.match(path)) is not None and method == "POST":
                repo = f"{unquote(match[1])}/{unquote(match[2])}"
                self.comments.append((repo, int(match[3]), str(payload.get("body", ""))))
                return 201, {"id": len(self.comments)}
            if path == "/graphql" and method == "POST":
                node = payload.get("variables", {}).get("id")
                pull_ = next((p for p in self.pulls if p.node_id == node), None)
                if pull_ is None:
                    return 200, {"errors": [{"message": "Could not resolve to a node"}]}
                pull_.draft = False
                return 200, {
                    "data": {"markPullRequestReadyForReview": {"pullRequest": {"isDraft": False}}}
                }
            return 404, {"message": "Not Found"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parsed = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                payload = json.loads(raw) if raw else {}
                token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                status, body = fake._answer(
                    self.command, parsed.path, parse_qs(parsed.query), payload, token
                )
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _serve

        return Handler
