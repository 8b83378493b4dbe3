"""A small GitHub REST (and one GraphQL mutation) client: pull requests and comments.

It speaks to `GITHUB_API_URL` (GitHub's own by default, or a GitHub Enterprise
`…/api/v3`), so tests point it at a fake server on loopback.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

DEFAULT_API_URL = "https://api.github.com"
USER_AGENT = "agentbot"


class GitHubError(Exception):
    """GitHub refused or could not be reached; the message says which, briefly."""


@dataclass(frozen=True)
class PullRequest:
    """The parts of a pull request the bot uses."""

    number: int
    url: str
    node_id: str
    draft: bool


def graphql_url(api_url: str) -> str:
    """GraphQL endpoint for a REST base: `/graphql`, or `/api/graphql` on Enterprise."""
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return base + "/graphql"


class GitHub:
    """Authenticated calls to one GitHub API."""

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL, timeout: float = 15) -> None:
        self._token = token
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"GitHub(api_url={self.api_url!r})"  # never the token

    def _request(self, method: str, url: str, payload: dict[str, Any] | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self._token}")
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        request.add_header("User-Agent", USER_AGENT)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            with contextlib.suppress(ValueError):
                detail = str(json.loads(detail).get("message", detail))
            raise GitHubError(f"GitHub answered {exc.code} to {method}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise GitHubError(f"GitHub could not be reached: {exc}") from None
        return json.loads(body) if body else None

    def _repo_url(self, repo: str, path: str) -> str:
        owner, name = repo.split("/", 1)
        return f"{self.api_url}/repos/{quote(owner)}/{quote(name)}{path}"

    @staticmethod
    def _pull(data: dict[str, Any]) -> PullRequest:
        return PullRequest(
            number=int(data["number"]),
            url=str(data["html_url"]),
            node_id=str(data.get("node_id", "")),
            draft=bool(data.get("draft", False)),
        )

    def find_pull(self, repo: str, head_branch: str) -> PullRequest | None:
        """The open pull request from `head_branch`, if there is one."""
        owner = repo.split("/", 1)[0]
        head = quote(f"{owner}:{head_branch}", safe="")
        found = self._request("GET", self._repo_url(repo, f"/pulls?state=open&head={head}"))
        return self._pull(found[0]) if found else None

    def open_pull(
        self, repo: str, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequest:
        """Open a pull request, or update and return the one already open for `head`."""
        existing = self.find_pull(repo, head)
        if existing is not None:
            self.update_pull(repo, existing.number, title=title, body=body)
            return existing
        data = self._request(
            "POST",
            self._repo_url(repo, "/pulls"),
            {"title": title, "head": head, "base": base, "body": body, "draft": draft},
        )
        return self._pull(data)

    def update_pull(
        self, repo: str, number: int, *, title: str | None = None, body: str | None = None
    ) -> None:
        """Change a pull request's title or body."""
        changes = {k: v for k, v in (("title", title), ("body", body)) if v is not None}
        self._request("PATCH", self._repo_url(repo, f"/pulls/{number}"), changes)

    def mark_ready(self, pull: PullRequest) -> None:
        """Take a draft out of draft (REST cannot; GraphQL's mutation can)."""
        if not pull.draft:
            return
        query = (
            "mutation($id: ID!) { markPullRequestReadyForReview(input: {pullRequestId: $id})"
            " { pullRequest { isDraft } } }"
        )
        data = self._request(
            "POST", graphql_url(self.api_url), {"query": query, "variables": {"id": pull.node_id}}
        )
        if data and data.get("errors"):
            raise GitHubError(f"GitHub would not mark the PR ready: {data['errors'][0]}")

    def comment(self, repo: str, issue_number: int, body: str) -> None:
        """Comment on an issue or pull request."""
        self._request(
            "POST", self._repo_url(repo, f"/issues/{issue_number}/comments"), {"body": body}
        )
