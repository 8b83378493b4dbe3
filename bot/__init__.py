"""Slack in and out: the Bolt app, its listeners, the web server and the CLI."""

# structlog without rich in every process (see jobs/__init__.py); bot's modules
# import structlog, so this comes first.
import jobs  # noqa: F401
