"""Publishing a person's Home, and working out whose Home a task's change concerns.

A publish that fails (Slack refusing, rate-limited past its retries, unreachable) is
logged and dropped: the Home is a view of the database, and the next change or the
next opening of the tab publishes it again. Nothing about a task waits on it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from threading import Lock

from redis import Redis
from redis.exceptions import RedisError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.models.views import View

from bot.home.blocks import render_home
from bot.logging import Redactor
from bot.masked_client import MaskedClient
from jobs.access import AccessPolicy
from jobs.config import EVERYONE, AgentbotConfig
from jobs.db import Database
from jobs.home import HomeViewer, home_data, request_publish, viewers, waiting_shown
from jobs.models import Task
from jobs.queues import Queues
from jobs.states import TaskState

log = logging.getLogger(__name__)

CHANNEL_CACHE_SECONDS = 300
# Slack user ids; a task from a webhook names its requester otherwise.
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
SLACK_FAILURES = (SlackApiError, SlackRequestError, OSError)


class ChannelDirectory:
    """The channels a person is a member of (`users.conversations`), cached a few minutes.

    When Slack will not say (a missing scope, say), the answer is no channel: the person
    then sees only their own tasks, never more than they may.
    """

    def __init__(self, client: WebClient, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = Lock()

    def of(self, user: str) -> frozenset[str]:
        """The ids of the public and private channels `user` is in."""
        with self._lock:
            cached = self._cache.get(user)
            if cached and self.clock() - cached[0] < CHANNEL_CACHE_SECONDS:
                return cached[1]
        channels: set[str] = set()
        cursor: str | None = None
        try:
            for _page in range(20):
                response = self.client.users_conversations(
                    user=user,
                    types="public_channel,private_channel",
                    exclude_archived=True,
                    limit=200,
                    cursor=cursor,
                )
                channels |= {str(c["id"]) for c in response.get("channels") or [] if c.get("id")}
                cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
        except SLACK_FAILURES as error:
            log.info("Slack did not list the channels of %s: %s", user, error)
            channels = set()
        found = frozenset(channels)
        with self._lock:
            self._cache[user] = (self.clock(), found)
        return found


class HomePublisher:
    """Builds and publishes Homes; asks for them again when a task changes."""

    def __init__(
        self,
        *,
        db: Database,
        redis: Redis,
        queues: Queues,
        client: WebClient,
        config: AgentbotConfig,
        access: AccessPolicy,
        redactor: Redactor | None = None,
    ) -> None:
        self.db = db
        self.redis = redis
        self.queues = queues
        self.config = config
        self.access = access
        self.channels = ChannelDirectory(client)
        self.slack = MaskedClient(client, redactor)

    def viewer(self, user: str) -> HomeViewer:
        """Who `user` is to the Home: an approver sees every task, anyone else their own
        and those of their channels (as `/agent list` decides)."""
        approver = self.access.is_approver(user)
        return HomeViewer(
            user=user,
            approver=approver,
            channels=frozenset() if approver else self.channels.of(user),
            may_self_approve=self.config.access.allow_self_approval,
        )

    def view(self, user: str, notice: str | None = None) -> View:
        """`user`'s Home as the database has it now."""
        viewer = self.viewer(user)
        with self.db.session() as session:
            data = home_data(
                session,
                self.queues,
                viewer,
                cost=self.config.cost,
                aws=self.config.aws is not None,
            )
        return render_home(data, notice=notice)

    def publish(self, user: str, notice: str | None = None) -> bool:
        """Publish `user`'s Home; False (logged) when Slack did not take it."""
        view = self.view(user, notice)
        try:
            self.slack.publish_view(user_id=user, view=view)
        except SLACK_FAILURES as error:
            log.warning("the Home of %s was not published: %s", user, error)
            return False
        return True

    def approvers(self) -> set[str]:
        """Every approver the Home can reach: named ones, user groups' members, and,
        where everyone approves, everyone who opened their Home."""
        names: set[str] = set()
        for entry in self.config.access.approvers:
            if entry == EVERYONE:
                names |= viewers(self.redis)
            elif entry.startswith("S"):
                names |= self.access.group_members(entry)
            else:
                names.add(entry)
        return {name for name in names if SLACK_USER.match(name)}

    def concerned(self, task: Task) -> set[str]:
        """Whose Home shows this task: its requester, and approvers while it waits for
        them and once more when it stops waiting."""
        users = {task.requester} if SLACK_USER.match(task.requester) else set()
        waiting = task.task_state == TaskState.AWAITING_APPROVAL
        if waiting_shown(self.redis, task.id, waiting=waiting):
            users |= self.approvers()
        return users

    def task_changed(self, task: Task) -> None:
        """Queue a republish of the Homes the task's change concerns; never raises."""
        try:
            request_publish(self.redis, self.queues, self.concerned(task))
        except (RedisError, *SLACK_FAILURES) as error:
            log.warning("the Homes concerned by %s were not queued: %s", task.key, error)
