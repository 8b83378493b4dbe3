"""Telling the place a task came from what became of it.

A task started by a GitHub issue gets two comments on that issue: one when the task
exists (its id and the Slack thread where it is planned and approved), one when it
succeeded (the pull request, or the branch). Any task whose pull request is marked
ready gets a comment there too: its id, its Slack thread and the issue it came from.
Replies to `/agent approve|reject` comments go back the same way. Each is an RQ job
on the default queue, so a slow or failing GitHub never holds up a webhook response,
and retries are RQ's.
"""

from __future__ import annotations

import logging
from typing import Any

from jobs.context import JobContext, current
from jobs.default_jobs import enqueue_default
from jobs.exceptions import TaskNotFound
from jobs.models import Task
from jobs.queues import Queues
from jobs.tasks import get_task

log = logging.getLogger(__name__)

SLACK_ARCHIVES = "https://slack.com/archives"
COMMAND_HELP = "Approvers can also reply here with `/agent approve` or `/agent reject <reason>`."


def thread_link(channel: str, ts: str) -> str:
    """The permalink of a Slack message, in the form Slack itself hands out.

    `https://slack.com/archives/<channel>/p<ts without the dot>` opens the message in
    whichever workspace the reader is signed in to.
    """
    return f"{SLACK_ARCHIVES}/{channel}/p{ts.replace('.', '')}"


def slack_link(ctx: JobContext, channel: str, ts: str) -> str:
    """The link to a Slack message: Slack's own permalink, else the built form.

    The notifier asks Slack (`chat.getPermalink`, through `SLACK_API_URL`); when Slack
    has no link for the message or cannot be reached, the link is built (`thread_link`).

    Args:
        ctx: The job context, whose notifier speaks to Slack.
        channel: The message's channel id.
        ts: The message's timestamp.
    """
    return ctx.notifier.permalink(channel, ts) or thread_link(channel, ts)


def task_thread(ctx: JobContext, task: Task) -> str | None:
    """The link to the task's Slack thread (its card), once the card is posted."""
    return slack_link(ctx, task.channel, task.card_ts) if task.card_ts else None


def issue_reference(task: Task, pull_repo: str | None) -> str | None:
    """How a pull request in `pull_repo` names the issue the task came from.

    `#7` within the same repository, `owner/name#7` across repositories (GitHub closes
    an issue from either form); None when the task did not come from an issue.
    """
    origin = github_issue(task)
    if origin is None:
        return None
    repo, number = origin
    same = pull_repo is not None and repo.lower() == pull_repo.lower()
    return f"#{number}" if same else f"{repo}#{number}"


def github_issue(task: Task) -> tuple[str, int] | None:
    """The GitHub repository and issue number a task came from, if it came from one."""
    data = task.source_data or {}
    repo, number = data.get("repo"), data.get("number")
    if task.source != "github" or not isinstance(repo, str) or not isinstance(number, int):
        return None
    return repo, number


# GitHub asks a client over its secondary rate limits to wait a minute or more.
GITHUB_BACKOFF = (5, 30, 120)


def _enqueue(queues: Queues, func: str, *args: Any, description: str) -> None:
    enqueue_default(queues, func, *args, description=description, backoff=GITHUB_BACKOFF)


def enqueue_announce(queues: Queues, task_id: int) -> None:
    """Queue the "took this as T-n" comment on the task's origin."""
    _enqueue(queues, "jobs.origin.announce", task_id, description=f"announce T-{task_id}")


def enqueue_reply(queues: Queues, repo: str, number: int, text: str) -> None:
    """Queue a comment on a GitHub issue (answers to `/agent` comments)."""
    _enqueue(queues, "jobs.origin.reply", repo, number, text, description=f"reply {repo}#{number}")


def report_success(ctx: JobContext, task_id: int) -> None:
    """Hook run after a task succeeded: queue the "ready" comments on its issue and PR.

    Best-effort: the task already succeeded, so a queue failure is logged, not raised.
    Two jobs, so that a retry of one never repeats the other's comment.
    """
    for func, where in (("announce_success", "issue"), ("announce_ready_pull", "pull request")):
        try:
            _enqueue(ctx.queues, f"jobs.origin.{func}", task_id, description=f"ready T-{task_id}")
        except Exception:
            log.warning("could not queue the %s comment for T-%s", where, task_id, exc_info=True)


def _load(ctx: JobContext, task_id: int) -> Task | None:
    try:
        with ctx.db.session() as session:
            return get_task(session, task_id)
    except TaskNotFound:
        return None


def announce(task_id: int) -> None:
    """Post the task's card, then tell its GitHub issue the task id and Slack thread."""
    ctx = current()
    ctx.notifier.sync(task_id)
    task = _load(ctx, task_id)
    origin = None if task is None else github_issue(task)
    if task is None or origin is None:
        return
    if ctx.github is None:
        log.info("T-%s came from GitHub, but GITHUB_TOKEN is not set; no comment", task_id)
        return
    thread = task_thread(ctx, task)
    where = (
        f"Follow it and approve its plan in Slack: {thread}"
        if thread
        else "Its card is in Slack, where approvers review the plan."
    )
    ctx.github.comment(
        *origin,
        f"Agentbot took this issue as **{task.key}** for `{task.repo}`. {where}\n\n{COMMAND_HELP}",
    )


def announce_success(task_id: int) -> None:
    """Tell the task's GitHub issue that the fix is verified and where to review it."""
    ctx = current()
    task = _load(ctx, task_id)
    origin = None if task is None else github_issue(task)
    if task is None or origin is None or ctx.github is None:
        return
    result = task.result or {}
    pull = result.get("pr_url")
    target = (
        f"the pull request is ready for review: {pull}"
        if pull
        else f"the fix is on branch `{result.get('branch', 'unknown')}`"
    )
    tests = _tests_line(result)
    link = task_thread(ctx, task)
    thread = f" Slack thread: {link}" if link else ""
    ctx.github.comment(*origin, f"**{task.key}** succeeded; {target}.{tests}{thread}")


def announce_ready_pull(task_id: int) -> None:
    """Tell the task's pull request, now ready for review, where it came from."""
    ctx = current()
    task = _load(ctx, task_id)
    if task is None or ctx.github is None:
        return
    result = task.result or {}
    repo = ctx.config.repo(task.repo)
    pull_repo = None if repo is None else repo.pull_request_repo
    number = result.get("pr_number")
    if pull_repo is None or not isinstance(number, int) or not result.get("pr_url"):
        return
    issue = issue_reference(task, pull_repo)
    source = f" (from {issue})" if issue else ""
    link = task_thread(ctx, task)
    lines = [
        f"Agentbot task **{task.key}**{source} is ready for review: the bot ran the test "
        "command itself and saw the new test fail, then the whole suite pass." + _tests_line(result)
    ]
    if link:
        lines.append(f"Slack thread, with the plan and its approval: {link}")
    ctx.github.comment(pull_repo, number, "\n\n".join(lines))


def _tests_line(result: dict[str, Any]) -> str:
    before, after = result.get("tests_before"), result.get("tests_after")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ""

    def counts(run: dict[str, Any]) -> str:
        return f"{run.get('passed', 0)} passed, {run.get('failed', 0)} failed"

    return f" Tests, run by Agentbot: before {counts(before)}; after {counts(after)}."


def reply(repo: str, number: int, text: str) -> None:
    """Comment on a GitHub issue, when a GitHub client is configured."""
    github = current().github
    if github is None:
        log.info("not replying on %s#%s: GITHUB_TOKEN is not set", repo, number)
        return
    github.comment(repo, number, text)
