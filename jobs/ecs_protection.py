"""ECS task scale-in protection: a worker task busy with a job is not stopped by scale-in.

On ECS the container agent injects ECS_AGENT_URI into every container; a PUT of
`{"ProtectionEnabled": true, "ExpiresInMinutes": N}` to
`$ECS_AGENT_URI/task-protection/v1/state` marks the task so that neither service
autoscaling's scale-in nor a deployment stops it, for N minutes (1 to 2,880) or until a
PUT of `{"ProtectionEnabled": false}`. The worker protects its task for the length of
each job and releases it afterwards, so the autoscaler may remove idle workers only.

Protection is a safeguard, never a condition of the work: when the endpoint cannot be
reached or refuses, a warning is logged and the job runs all the same. Outside ECS
(no ECS_AGENT_URI) nothing is sent.
"""

from __future__ import annotations

import json
import logging
import math
import urllib.error
import urllib.request
from typing import Any

from jobs.exceptions import first_line

log = logging.getLogger(__name__)

STATE_PATH = "/task-protection/v1/state"
# ECS's bounds for ExpiresInMinutes.
MIN_MINUTES = 1
MAX_MINUTES = 2880
# Beyond the job's own timeout: RQ's monitor kills a horse only 60 s after the timeout,
# then records the failure and the job's failure handling posts to Slack.
MARGIN_SECONDS = 300
# RQ's own default when a job was queued without a timeout (rq.Queue.DEFAULT_TIMEOUT).
DEFAULT_JOB_TIMEOUT = 180
# The agent is on the task's link-local network: it answers at once or not at all, and
# the worker waits for it before each job.
REQUEST_TIMEOUT_SECONDS = 5.0


def protection_minutes(job_timeout: float | None) -> int:
    """How long to protect the task for a job with this RQ timeout.

    Args:
        job_timeout: The job's timeout in seconds; None for RQ's default, -1 for none.

    Returns:
        The job's timeout plus a margin, in whole minutes, within ECS's 1 to 2,880.
    """
    if job_timeout is not None and job_timeout < 0:
        return MAX_MINUTES
    seconds = (job_timeout or DEFAULT_JOB_TIMEOUT) + MARGIN_SECONDS
    return max(MIN_MINUTES, min(MAX_MINUTES, math.ceil(seconds / 60)))


class TaskProtection:
    """Scale-in protection of the ECS task this process runs in.

    Args:
        agent_uri: The task's ECS_AGENT_URI; None (or empty) outside ECS, where every
            call does nothing.
        timeout: Seconds to wait for the agent's answer.
    """

    def __init__(self, agent_uri: str | None, *, timeout: float = REQUEST_TIMEOUT_SECONDS):
        self._url = agent_uri.rstrip("/") + STATE_PATH if agent_uri else None
        self._timeout = timeout

    @property
    def active(self) -> bool:
        """Whether there is an ECS agent to talk to."""
        return self._url is not None

    def protect(self, minutes: int) -> bool:
        """Protect the task from scale-in for `minutes` (clamped to ECS's 1 to 2,880).

        Returns:
            Whether the agent confirmed it; False outside ECS or on failure (logged).
        """
        minutes = max(MIN_MINUTES, min(MAX_MINUTES, minutes))
        return self._put({"ProtectionEnabled": True, "ExpiresInMinutes": minutes})

    def release(self) -> bool:
        """Let scale-in stop the task again.

        Returns:
            Whether the agent confirmed it; False outside ECS or on failure (logged).
        """
        return self._put({"ProtectionEnabled": False})

    def _put(self, body: dict[str, Any]) -> bool:
        if self._url is None:
            return False
        action = "enable" if body["ProtectionEnabled"] else "release"
        request = urllib.request.Request(
            self._url,
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                answer = _json(response.read())
        except urllib.error.HTTPError as exc:
            answer = _json(exc.read())
            log.warning(
                "could not %s task scale-in protection: HTTP %s %s",
                action,
                exc.code,
                _reason(answer) or exc.reason,
            )
            return False
        except (OSError, ValueError) as exc:
            # URLError, refused or timed-out connections, and a malformed URI.
            log.warning("could not %s task scale-in protection: %s", action, first_line(exc))
            return False
        # The agent answers 200 with a `failure` when ECS refused for this task (a task
        # not in a service, say).
        reason = _reason(answer)
        if reason or "protection" not in answer:
            log.warning(
                "could not %s task scale-in protection: %s",
                action,
                reason or "unexpected answer from the ECS agent",
            )
            return False
        log.debug("task scale-in protection %s", "enabled" if body["ProtectionEnabled"] else "off")
        return True


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _reason(answer: dict[str, Any]) -> str:
    """The agent's `failure` (Reason, Detail) or `error` (Code, Message), as one line."""
    for key, fields in (("failure", ("Reason", "Detail")), ("error", ("Code", "Message"))):
        problem = answer.get(key)
        if isinstance(problem, dict):
            parts = [str(problem[name]) for name in fields if problem.get(name)]
            return ": ".join(parts) or key
    return ""
