"""The Slack Web API calls that show people text, with every credential masked first.

Workers' messages may quote git's stderr, an API's answer or an exception, and a
remote URL with its token in it must not reach a channel. Each call here hands every
text people read (message text, block texts, file titles, comments and contents)
through the logs' redaction before Slack sees it.
"""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from slack_sdk.web import SlackResponse

from bot.logging import Redactor

# Block Kit keys whose string values people read (text objects, image descriptions).
READABLE_KEYS = frozenset({"text", "alt_text"})
# Parameters of a file upload that people read beside the file.
UPLOAD_TEXTS = ("title", "initial_comment")


class MaskedClient:
    """Posts, edits, ephemerals and uploads through a `WebClient`, masked."""

    def __init__(self, client: WebClient, redactor: Redactor | None = None) -> None:
        """Wrap `client`.

        Args:
            client: The Slack Web API client (reaching `SLACK_API_URL`).
            redactor: What masks credentials; by default the logs' patterns plus the
                client's own token.
        """
        self.client = client
        self.redactor = redactor or Redactor([client.token] if client.token else [])

    def scrub(self, text: str) -> str:
        """`text` masked, never longer than it was."""
        masked = self.redactor.scrub(text)
        # A mask can be longer than a short password it hides; never let it push a
        # text past the Slack limit the original was cut to fit.
        if len(masked) > len(text):
            masked = masked[: max(len(text) - 1, 0)] + "…"
        return masked

    def _scrub_blocks(self, value: Any) -> Any:
        if isinstance(value, Block):
            value = value.to_dict()
        if isinstance(value, dict):
            return {
                key: self.scrub(item)
                if key in READABLE_KEYS and isinstance(item, str)
                else self._scrub_blocks(item)
                for key, item in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self._scrub_blocks(item) for item in value]
        return value

    def _clean(self, message: dict[str, Any]) -> dict[str, Any]:
        cleaned = dict(message)
        if isinstance(cleaned.get("text"), str):
            cleaned["text"] = self.scrub(cleaned["text"])
        if isinstance(cleaned.get("blocks"), (list, tuple)):
            cleaned["blocks"] = self._scrub_blocks(cleaned["blocks"])
        return cleaned

    def post(self, **message: Any) -> SlackResponse:
        """`chat.postMessage`, masked."""
        return self.client.chat_postMessage(**self._clean(message))

    def update(self, **message: Any) -> SlackResponse:
        """`chat.update`, masked."""
        return self.client.chat_update(**self._clean(message))

    def ephemeral(self, **message: Any) -> SlackResponse:
        """`chat.postEphemeral`, masked."""
        return self.client.chat_postEphemeral(**self._clean(message))

    def upload(self, **params: Any) -> SlackResponse:
        """`files_upload_v2`, with its title, comment and text content masked."""
        for key in UPLOAD_TEXTS:
            if isinstance(params.get(key), str):
                params[key] = self.scrub(params[key])
        if isinstance(params.get("content"), str):
            # A file has no length limit to keep: mask in full.
            params["content"] = self.redactor.scrub(params["content"])
        return self.client.files_upload_v2(**params)

    def publish_view(self, *, user_id: str, view: View) -> SlackResponse:
        """`views.publish` of a Home tab, with every text in it masked."""
        return self.client.views_publish(user_id=user_id, view=self._scrub_blocks(view.to_dict()))
