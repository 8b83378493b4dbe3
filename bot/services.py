"""The collaborators the Slack side and the workers are built from."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock

from redis import Redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.settings import Settings
from jobs.access import AccessPolicy
from jobs.config import AgentbotConfig
from jobs.db import Database
from jobs.lifecycle import Lifecycle
from jobs.queues import Queues

GROUP_CACHE_SECONDS = 300


def make_slack_client(settings: Settings) -> WebClient:
    """A WebClient on SLACK_API_URL that retries rate limits, 5xx and dropped connections."""
    return WebClient(
        token=settings.slack_bot_token.get_secret_value() or None,
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=3),
        ],
    )


def make_redis(url: str) -> Redis:
    """A Redis client that fails fast instead of hanging a Slack request."""
    if url.startswith("memory://"):
        import fakeredis

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
    config: AgentbotConfig
    db: Database
    redis: Redis
    queues: Queues
    slack: WebClient
    access: AccessPolicy
    lifecycle: Lifecycle


def build_services(settings: Settings, config: AgentbotConfig | None = None) -> Services:
    """Wire the database, Redis, queues, Slack client and lifecycle together."""
    config = config if config is not None else settings.load_config()
    db = Database(settings.database_url)
    redis = make_redis(settings.redis_url)
    queues = Queues(redis, config.jobs)
    slack = make_slack_client(settings)
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
