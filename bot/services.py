"""The collaborators the Slack side and the workers are built from."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from threading import Lock

from redis import Redis
from redis.exceptions import RedisError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.settings import ConfigError, Settings
from jobs.access import AccessPolicy
from jobs.config import AgentbotConfig
from jobs.db import Database
from jobs.lifecycle import Lifecycle
from jobs.queues import Queues

GROUP_CACHE_SECONDS = 300
# Hash of "<method>|<error>" -> count, read by `bot.metrics` at scrape time. Every
# process (web threads, forked job horses) adds to it, so nothing is lost with a horse.
SLACK_ERRORS_KEY = "agentbot:metrics:slack_api_errors"

log = logging.getLogger(__name__)


def slack_error_kind(response: HttpResponse | None, error: Exception | None) -> str | None:
    """What went wrong with one Slack API attempt, or None when it went right."""
    if error is not None and response is None:
        return "connection"
    if response is None:
        return None
    if response.status_code == 429:
        return "ratelimited"
    if response.status_code >= 400:
        return f"http_{response.status_code}"
    body = response.body or {}
    if body.get("ok") is False:
        return re.sub(r"[^a-z0-9_]", "_", str(body.get("error") or "unknown").lower())[:64]
    return None


class SlackErrorCounter(RetryHandler):
    """Counts every failed Slack API attempt in Redis; never asks for a retry itself.

    slack_sdk shows each attempt's outcome (a response, an HTTP error or a dropped
    connection) to its retry handlers in order, so this one, placed first, sees them all.
    """

    def __init__(self, redis: Redis) -> None:
        super().__init__(max_retry_count=0)
        self.redis = redis

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        """Record the attempt if it failed; always False."""
        kind = slack_error_kind(response, error)
        if kind is not None:
            method = request.url.split("?", 1)[0].rsplit("/", 1)[-1][:64]
            try:
                self.redis.hincrby(SLACK_ERRORS_KEY, f"{method}|{kind}", 1)
            except RedisError:  # a metric must never break a Slack call
                log.warning("could not count a Slack API error", exc_info=True)
        return False


def make_slack_client(settings: Settings, redis: Redis | None = None) -> WebClient:
    """A WebClient on SLACK_API_URL that retries rate limits, 5xx and dropped connections.

    Args:
        settings: Where the token and the API's base URL come from.
        redis: When given, every failed attempt is counted there for `/metrics`.
    """
    counting: list[RetryHandler] = [] if redis is None else [SlackErrorCounter(redis)]
    return WebClient(
        token=settings.slack_bot_token.get_secret_value() or None,
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=[
            *counting,
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=3),
        ],
    )


def make_redis(url: str) -> Redis:
    """A Redis client that fails fast instead of hanging a Slack request."""
    if url.startswith("memory://"):
        try:
            import fakeredis
        except ImportError:
            raise ConfigError(
                "REDIS_URL: memory:// is the dev sandbox's in-process Redis, which needs the "
                "development dependencies (`uv sync`); use redis://, rediss:// or unix://"
            ) from None

        server = fakeredis.FakeServer()
        return fakeredis.FakeRedis(server=server)
    return Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5, health_check_interval=30)


class GroupDirectory:
    """Slack user-group membership, cached for a few minutes."""

    def __init__(self, client: WebClient, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = Lock()

    def members(self, group_id: str) -> frozenset[str]:
        """The user ids in a user group (empty if Slack will not say)."""
        with self._lock:
            cached = self._cache.get(group_id)
            if cached and self.clock() - cached[0] < GROUP_CACHE_SECONDS:
                return cached[1]
        try:
            response = self.client.usergroups_users_list(usergroup=group_id)
            members: list[str] = response.get("users", [])
            users = frozenset(str(u) for u in members)
        except SlackApiError:
            users = frozenset()
        with self._lock:
            self._cache[group_id] = (self.clock(), users)
        return users


@dataclass
class Services:
    """Everything a process needs, built once from settings."""

    settings: Settings
    # The file as the settings read it, handed down; a field so that a test (or the
    # sandbox) can run the same wiring under another configuration.
    config: AgentbotConfig
    db: Database
    redis: Redis
    queues: Queues
    slack: WebClient
    access: AccessPolicy
    lifecycle: Lifecycle
    # Why the AWS reports cannot run yet (an estate still being set up), or None when
    # they can. Asked before every `/agent aws …`; a sentence means nothing is queued.
    aws_pending: Callable[[], str | None] = field(default=lambda: None)


def build_services(settings: Settings) -> Services:
    """Wire the database, Redis, queues, Slack client and lifecycle together.

    Each is handed its part of `settings.config`, the file read once.

    Raises:
        ConfigError: The configuration file is missing or invalid.
    """
    config = settings.config
    db = Database(settings.database_url)
    redis = make_redis(settings.redis_url)
    queues = Queues(redis, config.jobs)
    slack = make_slack_client(settings, redis)
    access = AccessPolicy(config.access, GroupDirectory(slack).members)
    return Services(
        settings=settings,
        config=config,
        db=db,
        redis=redis,
        queues=queues,
        slack=slack,
        access=access,
        lifecycle=Lifecycle(db, queues, config, access),
    )
