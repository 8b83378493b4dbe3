"""GitHub issues become tasks, and `/agent` comments approve them, through the real app."""

from __future__ import annotations

import copy
import dataclasses
import itertools

import pytest

from bot.runtime import job_context
from bot.services import Services
from jobs import origin
from jobs.config import AgentbotConfig
from jobs.lifecycle import Lifecycle
from jobs.notify import NullNotifier
from sandbox.fakeslack import TEAM_DOMAIN, FakeSlack
from tests.conftest import APPROVER, CHANNEL, REQUESTER
from tests.fakes.github_server import FakeGitHub
from tests.slackclient import SlackUser, texts
from tests.webhooks.conftest import Hooks, deliveries, load, serve, tasks

ISSUE = ("acme/calc", 7)


@pytest.fixture
def config(config: AgentbotConfig) -> AgentbotConfig:
    """The webhook configuration, with the repo's pull requests on (the fake) GitHub."""
    repo = config.repos[0].model_copy(update={"github_repo": "acme/calc"})
    return config.model_copy(update={"repos": (repo,)})


def thread_path(ts: str) -> str:
    """The part of a Slack message link that names the message, whoever built it."""
    return f"/archives/{CHANNEL}/p{ts.replace('.', '')}"


COMMENT_IDS = itertools.count(600_000_000)


def permalink(ts: str) -> str:
    """The link Slack (the fake) hands out for a card: not the one the bot would build."""
    return f"https://{TEAM_DOMAIN}.slack.com{thread_path(ts)}"


def comment(body: str, login: str = "octo-lead") -> dict[str, object]:
    """A new comment on the issue: its own id, as GitHub gives each comment."""
    payload = load("github_issue_comment_created.json")
    payload["comment"]["id"] = next(COMMENT_IDS)
    payload["comment"]["body"] = body
    payload["comment"]["user"]["login"] = login
    payload["sender"] = copy.deepcopy(payload["comment"]["user"])
    return payload


def comments_on_issue(github: FakeGitHub) -> list[str]:
    return [body for repo, number, body in github.comments if (repo, number) == ISSUE]


def test_labelled_issue_becomes_a_task_with_card_and_issue_comment(
    hooks: Hooks, services: Services, user: SlackUser, slack: FakeSlack, github: FakeGitHub
) -> None:
    """The label starts a task from the issue; its card is in the channel, linked from GitHub."""
    reply = hooks.github(load("github_issues_labeled.json"), "issues")
    assert reply.status == 201, reply.body
    assert reply.body == {"status": "created", "task": "T-1", "channel": CHANNEL}

    [task] = tasks(services)
    assert task.source == "github" and task.source_ref == "acme/calc#7"
    assert task.description.startswith(
        "Discount applied as an amount, not a percentage\n\n"
        "A 10% discount on 200.00 gives 190.00 at checkout"
    )
    assert "https://github.com/acme/calc/issues/7" in task.description
    assert task.requester == REQUESTER  # octo-reporter is linked to this Slack user
    assert task.source_data is not None and task.source_data["number"] == 7

    user.work("default")
    card = user.card()
    assert "T-1 · Discount applied as an amount, not a percentage" in texts(card)
    assert "github" in texts(card)
    [said] = comments_on_issue(github)
    assert "**T-1**" in said
    assert permalink(card.ts) in said
    assert "/agent approve" in said


def test_comment_approval_runs_the_fix_and_reports_back_on_the_issue(
    hooks: Hooks, services: Services, user: SlackUser, slack: FakeSlack, github: FakeGitHub
) -> None:
    """`/agent approve` from a linked approver acts like the button; success is reported."""
    hooks.github(load("github_issues_labeled.json"), "issues")
    user.work("default", "plan")
    plan = next(m for m in user.thread() if "Plan for T-1" in texts(m))
    assert any(b.get("type") == "actions" for b in plan.blocks)

    reply = hooks.github(load("github_issue_comment_created.json"), "issue_comment")
    assert reply.status == 200, reply.body
    assert reply.body == {"status": "approved", "task": "T-1"}
    assert tasks(services)[0].state == "approved"

    user.work("default", "execute")
    [task] = tasks(services)
    assert task.state == "succeeded", task.error
    plan = next(m for m in user.thread() if m.ts == plan.ts)
    assert f"<@{APPROVER}>" in texts(plan)
    assert all(b.get("type") != "actions" for b in plan.blocks)
    said = comments_on_issue(github)
    assert any("@octo-lead T-1 is approved" in body for body in said)
    ready = said[-1]
    assert ready.startswith("**T-1** succeeded")
    assert "agent/T-1" in (task.result or {}).get("branch", "")
    assert "before 2 passed, 0 failed; after 4 passed, 0 failed" in ready


def test_comment_reject_with_reason_rejects_the_plan(
    hooks: Hooks, services: Services, user: SlackUser, github: FakeGitHub
) -> None:
    """`/agent reject <reason>` rejects as the buttons do, with the reason on the plan."""
    hooks.github(load("github_issues_labeled.json"), "issues")
    user.work("default", "plan")

    reply = hooks.github(
        comment("/agent reject touches billing; needs a design review"), "issue_comment"
    )
    assert reply.status == 200 and reply.body["status"] == "rejected"
    assert tasks(services)[0].state == "rejected"
    user.work("default")
    plan = next(m for m in user.thread() if "Plan for T-1" in texts(m))
    assert f"Rejected by <@{APPROVER}>: touches billing; needs a design review" in texts(plan)
    assert services.queues.lengths()["execute"] == 0


def test_comment_reject_without_reason_rejects_and_says_so(
    hooks: Hooks, services: Services, user: SlackUser, github: FakeGitHub
) -> None:
    """A bare `/agent reject` rejects like the slash command, recorded as no reason given."""
    hooks.github(load("github_issues_labeled.json"), "issues")
    user.work("default", "plan")

    reply = hooks.github(comment("/agent reject"), "issue_comment")
    assert reply.status == 200 and reply.body["status"] == "rejected"
    assert tasks(services)[0].state == "rejected"
    user.work("default")
    plan = next(m for m in user.thread() if "Plan for T-1" in texts(m))
    assert f"Rejected by <@{APPROVER}>: no reason given" in texts(plan)


def test_comments_from_people_who_may_not_decide_are_refused_with_a_reply(
    hooks: Hooks, services: Services, user: SlackUser, github: FakeGitHub
) -> None:
    """Unlinked logins, non-approvers and the approver who labelled it get a reply only."""
    labelled_by_lead = load("github_issues_labeled.json")
    labelled_by_lead["sender"]["login"] = "octo-lead"
    hooks.github(labelled_by_lead, "issues")
    assert tasks(services)[0].requester == APPROVER
    user.work("default", "plan")

    unlinked = hooks.github(comment("/agent approve", login="someone-else"), "issue_comment")
    stranger = hooks.github(comment("/agent approve", login="octo-stranger"), "issue_comment")
    own = hooks.github(comment("/agent approve lgtm", login="octo-lead"), "issue_comment")
    for reply in (unlinked, stranger, own):
        assert reply.status == 202 and reply.body["status"] == "refused", reply.body
    assert "not linked to a Slack user" in unlinked.body["reason"]
    assert "Only approvers" in stranger.body["reason"]
    assert "someone else has to approve" in own.body["reason"]
    assert tasks(services)[0].state == "awaiting_approval"

    user.work("default")
    said = comments_on_issue(github)
    assert any(body.startswith("@someone-else your GitHub login is not linked") for body in said)
    assert any(body.startswith("@octo-stranger Only approvers") for body in said)
    assert any(body.startswith("@octo-lead You requested this task") for body in said)


def test_other_comments_and_unknown_commands(
    hooks: Hooks, services: Services, user: SlackUser, github: FakeGitHub
) -> None:
    """Plain comments are ignored; an unknown `/agent` verb gets the usage; a bot is ignored."""
    hooks.github(load("github_issues_labeled.json"), "issues")
    assert hooks.github(comment("Thanks, looking at it"), "issue_comment").status == 202
    usage = hooks.github(comment("/agent retry"), "issue_comment")
    assert usage.status == 202 and "/agent approve" in usage.body["reason"]
    bot = comment("/agent approve")
    bot["sender"]["type"] = "Bot"
    assert hooks.github(bot, "issue_comment").body["status"] == "ignored"
    assert tasks(services)[0].state == "queued"


def test_issues_without_the_label_or_in_other_repos_start_nothing(
    hooks: Hooks, services: Services
) -> None:
    """Another label, another repo, another action or event: 202 and no task."""
    other_label = load("github_issues_labeled.json")
    other_label["label"]["name"] = "bug"
    other_repo = load("github_issues_labeled.json")
    other_repo["repository"]["full_name"] = "acme/website"
    closed = load("github_issues_labeled.json")
    closed["action"] = "closed"
    for payload, event in (
        (other_label, "issues"),
        (other_repo, "issues"),
        (closed, "issues"),
        (load("github_issues_labeled.json"), "pull_request"),
    ):
        reply = hooks.github(payload, event)
        assert reply.status == 202 and reply.body["status"] == "ignored", reply.body
    assert tasks(services) == []
    assert deliveries(services) == 0


def test_issue_opened_with_the_label_starts_a_task(hooks: Hooks, services: Services) -> None:
    """An issue opened already carrying the label is taken, once, with its labeled event."""
    opened = load("github_issues_labeled.json")
    opened["action"] = "opened"
    del opened["label"]
    assert hooks.github(opened, "issues").status == 201
    again = hooks.github(load("github_issues_labeled.json"), "issues")
    assert again.status == 200 and again.body == {"status": "exists", "task": "T-1"}
    assert len(tasks(services)) == 1


def test_replayed_delivery_creates_nothing_new(hooks: Hooks, services: Services) -> None:
    """The same X-GitHub-Delivery twice: the second is acknowledged as a duplicate."""
    first = hooks.github(load("github_issues_labeled.json"), "issues", delivery="d-1")
    replay = hooks.github(load("github_issues_labeled.json"), "issues", delivery="d-1")
    assert first.status == 201
    assert replay.status == 200 and replay.body == {"status": "duplicate"}
    assert len(tasks(services)) == 1
    assert services.queues.lengths()["plan"] == 1


def test_ping_is_answered(hooks: Hooks, services: Services) -> None:
    """GitHub's ping on hook creation is answered 200, and changes nothing."""
    reply = hooks.github(load("github_ping.json"), "ping")
    assert reply.status == 200 and reply.body == {"status": "pong"}
    assert tasks(services) == []


def test_repo_known_by_its_github_name(services: Services, config: AgentbotConfig) -> None:
    """A repo configured under another name is matched by its `github_repo`."""
    renamed = config.repos[0].model_copy(
        update={"name": "shop/pricing", "github_repo": "acme/calc"}
    )
    webhooks = config.webhooks.model_copy(
        update={"github": config.webhooks.github.model_copy(update={"repos": ("shop/pricing",)})}
    )
    other = config.model_copy(update={"repos": (renamed,), "webhooks": webhooks})
    lifecycle = Lifecycle(services.db, services.queues, other, services.access)
    for hooks in serve(dataclasses.replace(services, config=other, lifecycle=lifecycle)):
        reply = hooks.github(load("github_issues_labeled.json"), "issues")
        assert reply.status == 201, reply.body
    [task] = tasks(services)
    assert task.repo == "shop/pricing" and task.source_ref == "shop/pricing#7"


def test_ready_pull_request_closes_the_issue_links_slack_and_says_so(
    hooks: Hooks, services: Services, user: SlackUser, slack: FakeSlack, github: FakeGitHub
) -> None:
    """The ready PR's body closes the issue and links the thread; a comment says it is ready."""
    hooks.github(load("github_issues_labeled.json"), "issues")
    user.work("default", "plan")
    card = user.card()
    draft = github.pull("acme/calc", "agent/T-1")
    assert draft is not None and draft.draft
    assert "Closes #7" in draft.body and permalink(card.ts) in draft.body
    assert not [c for c in github.comments if c[1] == draft.number]  # nothing said while draft

    hooks.github(load("github_issue_comment_created.json"), "issue_comment")
    user.work("default", "execute")
    user.work("default")
    [task] = tasks(services)
    assert task.state == "succeeded", task.error
    pull = github.pull("acme/calc", "agent/T-1")
    assert pull is not None and not pull.draft
    assert pull.body.startswith("Agentbot task **T-1**, from #7.")
    assert "Closes #7" in pull.body and permalink(card.ts) in pull.body
    assert "| GREEN: `python -m pytest -q` | 4 passed, 0 failed |" in pull.body
    [said] = [body for repo, number, body in github.comments if number == pull.number]
    assert said.startswith("Agentbot task **T-1** (from #7) is ready for review")
    assert "before 2 passed, 0 failed; after 4 passed, 0 failed" in said
    assert permalink(card.ts) in said
    # The issue hears about the pull request too.
    pull_url = f"https://github.example/acme/calc/pull/{pull.number}"
    assert f"the pull request is ready for review: {pull_url}" in comments_on_issue(github)[-1]


def test_thread_link_is_slacks_permalink_and_built_when_slack_has_none(
    services: Services, slack: FakeSlack
) -> None:
    """The workers' notifier asks Slack for the link; without one, the link is built."""
    posted = services.slack.chat_postMessage(channel=CHANNEL, text="T-1 · queued")
    ts = str(posted["ts"])
    ctx = job_context(services)
    assert origin.slack_link(ctx, CHANNEL, ts) == permalink(ts)
    assert [call.params["message_ts"] for call in slack.calls_to("chat.getPermalink")] == [ts]

    # Slack answers message_not_found: the link is built, and nothing fails.
    assert origin.slack_link(ctx, CHANNEL, "1.000001") == (
        f"https://slack.com/archives/{CHANNEL}/p1000001"
    )
    # A notifier with no chat behind it: the built link.
    silent = dataclasses.replace(ctx, notifier=NullNotifier())
    assert origin.slack_link(silent, CHANNEL, ts) == f"https://slack.com{thread_path(ts)}"
