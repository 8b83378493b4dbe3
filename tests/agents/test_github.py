"""The GitHub client against a fake GitHub API on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents.github import GitHub, GitHubError, graphql_url
from tests.fakes.github_server import FakeGitHub


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def test_draft_pull_is_opened_then_marked_ready(github: FakeGitHub) -> None:
    """A draft PR opens once; opening again updates it; mark_ready takes it out of draft."""
    client = GitHub(github.token, github.url)
    pull = client.open_pull(
        "acme/calc", head="agent/T-1", base="main", title="Plan", body="PLAN", draft=True
    )
    assert pull.draft and pull.number == 1
    again = client.open_pull(
        "acme/calc", head="agent/T-1", base="main", title="Fix", body="evidence", draft=True
    )
    assert again.number == 1 and len(github.pulls) == 1
    assert github.pulls[0].title == "Fix" and github.pulls[0].body == "evidence"
    client.mark_ready(again)
    assert github.pulls[0].draft is False


def test_comment_lands_on_the_issue(github: FakeGitHub) -> None:
    """Comments go to the issue number given."""
    GitHub(github.token, github.url).comment("acme/calc", 7, "Agentbot took this as T-3")
    assert github.comments == [("acme/calc", 7, "Agentbot took this as T-3")]


def test_bad_token_is_a_readable_error(github: FakeGitHub) -> None:
    """A refused token raises a short error that does not contain the token."""
    with pytest.raises(GitHubError) as caught:
        GitHub("ghp_wrong_secret", github.url).comment("acme/calc", 1, "x")
    assert "401" in str(caught.value) and "ghp_wrong_secret" not in str(caught.value)
    assert "ghp_wrong_secret" not in repr(GitHub("ghp_wrong_secret", github.url))


def test_graphql_url_for_enterprise() -> None:
    """GitHub Enterprise's GraphQL endpoint sits beside its REST one."""
    assert graphql_url("https://github.acme.com/api/v3") == "https://github.acme.com/api/graphql"
    assert graphql_url("https://api.github.com") == "https://api.github.com/graphql"
