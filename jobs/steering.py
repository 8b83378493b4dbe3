"""What people say to a running task, carried from the web process to the job running it.

The agent runs in a worker's work horse; Slack's requests arrive in `serve`. Between
them, Redis holds one small set of keys per task *and job*: messages for the agent,
a "keep waiting" after a stall, an approver's budget decision. The job id is part of
every key, so what was said to one job is never read by another (a retry, a newer job
after reconciliation): a job hears only what was said while it owned the task, and
what it did not read expires with it.
"""

from __future__ import annotations

import json

from redis import Redis

KEY_TTL_SECONDS = 24 * 3600
# Counted on /metrics as agentbot_agent_stalls_total.
STALLS_KEY = "agentbot:agent-stalls"


def minutes_text(minutes: float) -> str:
    """`10 minutes`, `1 minute`, `30 seconds`."""
    if minutes < 1:
        return f"{round(minutes * 60)} seconds"
    shown = f"{minutes:g}"
    return f"{shown} minute" + ("" if shown == "1" else "s")


def usd(amount: float) -> str:
    """Dollars as people read them: `$4.20`, and a fraction of a cent not shown as $0.00."""
    return f"${amount:.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.4f}"


class RunChannel:
    """The keys through which one job's run of one task is talked to.

    Args:
        redis: Redis.
        task_id: The task.
        job_id: The job that owns it (the task's `job_id`).
    """

    def __init__(self, redis: Redis, task_id: int, job_id: str) -> None:
        self.redis = redis
        self.prefix = f"agentbot:run:{task_id}:{job_id}"

    # -- said in Slack (serve) ------------------------------------------------------------

    def send(self, author: str, text: str) -> None:
        """Queue a message for the agent."""
        key = f"{self.prefix}:messages"
        pipe = self.redis.pipeline()
        pipe.rpush(key, json.dumps({"author": author, "text": text}))
        pipe.expire(key, KEY_TTL_SECONDS)
        pipe.execute()

    def keep_waiting(self, user: str) -> None:
        """Someone chose to keep waiting for a quiet run."""
        self.redis.set(f"{self.prefix}:keep-waiting", user, ex=KEY_TTL_SECONDS)

    def decide_budget(self, user: str, more_usd: float | None) -> bool:
        """Record an approver's budget decision (more dollars, or None to stop).

        Returns:
            False when a decision was already taken (the first one stands).
        """
        value = json.dumps({"user": user, "more": more_usd})
        return bool(self.redis.set(f"{self.prefix}:budget", value, nx=True, ex=KEY_TTL_SECONDS))

    # -- read by the job (worker) ---------------------------------------------------------

    def messages(self) -> list[tuple[str, str]]:
        """The messages sent since the last call, oldest first, as (author, text)."""
        raw: list[bytes] | None = self.redis.lpop(f"{self.prefix}:messages", 100)  # type: ignore[assignment]
        said = []
        for item in raw or []:
            data = json.loads(item)
            said.append((str(data["author"]), str(data["text"])))
        return said

    def kept_waiting(self) -> str | None:
        """Who chose to keep waiting since the last call, if anyone."""
        user = self.redis.getdel(f"{self.prefix}:keep-waiting")
        return None if user is None else str(user.decode() if isinstance(user, bytes) else user)

    def budget_decision(self) -> tuple[str, float | None] | None:
        """The budget decision taken, if any, as (user, more dollars or None)."""
        raw = self.redis.get(f"{self.prefix}:budget")
        if raw is None:
            return None
        data = json.loads(raw)
        more = data.get("more")
        return str(data["user"]), None if more is None else float(more)

    def reopen_budget(self) -> None:
        """Clear the last decision, so the next budget stop asks again."""
        self.redis.delete(f"{self.prefix}:budget")
