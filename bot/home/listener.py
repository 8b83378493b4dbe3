"""`app_home_opened`: publish the person's Home; and how a click on Home is answered.

A click on Home has no `response_url` (it is not on a message), so what a thread's
button would say privately is shown at the top of the clicker's Home instead.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.home.publisher import SLACK_USER
from bot.services import Services
from jobs.home import remember_viewer, request_publish, tell


def from_home(body: dict[str, Any]) -> bool:
    """Whether a click came from a Home tab."""
    view = body.get("view")
    return isinstance(view, dict) and view.get("type") == "home"


def tell_on_home(services: Services, body: dict[str, Any], text: str) -> None:
    """Show the clicker their Home again with `text` at the top.

    Through the queue, like every publish: a rate-limited Slack is waited for in a
    worker, not in the click's request, which Slack gives three seconds.
    """
    user = body.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    if isinstance(user_id, str) and SLACK_USER.match(user_id):
        tell(services.redis, services.queues, user_id, text)


def register(app: App, services: Services) -> None:
    """Register the Home tab's event listener."""

    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any]) -> None:
        # The same event comes for the Messages tab, which has nothing to publish.
        if event.get("tab") != "home":
            return
        user = event.get("user")
        if not isinstance(user, str) or not SLACK_USER.match(user):
            return
        remember_viewer(services.redis, user)
        # Through the queue, like every other publish: one waiting per person, and a
        # rate-limited Slack is waited for in a worker, not in this request.
        request_publish(services.redis, services.queues, [user])
