"""Any correctly signed body gets an answer, never a server error.

Hypothesis posts the recorded payloads with parts replaced by arbitrary JSON (odd
types, NUL characters, lone surrogates, huge numbers, deep nesting), and arbitrary
JSON objects, through the real WSGI app in-process. Every answer must be one of the
documented statuses, and a 400 must leave the database as it was.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.app import build_app
from bot.services import Services
from bot.web import WebApp
from bot.webhooks import register
from jobs.config import AgentbotConfig, LimitsConfig
from jobs.models import SlackDelivery, Task
from tests.webhooks.conftest import GITHUB_SECRET, JIRA_SECRET, SENTRY_SECRET, load, sign

ANSWERS = {200, 201, 202, 400}

FRAGMENTS = ["\x00", "\ud800", "\u202e", "x" * 9000, "<!channel> <@U1>", "\n\n\n", "🙂"]
# Any code point, NUL and lone surrogates included: JSON can carry them all.
HOSTILE_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=30)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False)
    | HOSTILE_TEXT
    | st.sampled_from(["agent", "AI-Fix", "triggered", "labeled", "event_alert", *FRAGMENTS])
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
FRAME = ("data", "event", "exception", "values", 0, "stacktrace", "frames", 2)
# The nodes each parser reads; mutations pick these half of the time.
READ = [
    ("action",),
    ("issue", "title"),
    ("issue", "body"),
    ("issue", "number"),
    ("issue", "labels"),
    ("issue", "html_url"),
    ("label", "name"),
    ("repository", "full_name"),
    ("sender", "login"),
    ("sender", "type"),
    ("comment", "body"),
    ("data", "event", "title"),
    ("data", "event", "culprit"),
    ("data", "event", "url"),
    ("data", "event", "web_url"),
    ("data", "event", "project"),
    ("data", "event", "level"),
    ("data", "event", "metadata"),
    ("data", "event", "exception", "values"),
    (*FRAME, "filename"),
    (*FRAME, "lineno"),
    (*FRAME, "function"),
    ("data", "triggered_rule"),
    ("webhookEvent",),
    ("issue", "key"),
    ("issue", "self"),
    ("issue", "fields", "summary"),
    ("issue", "fields", "description"),
    ("issue", "fields", "labels"),
    ("issue", "fields", "project", "key"),
    ("issue", "fields", "priority"),
    ("changelog", "items"),
    ("user", "displayName"),
]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a node of a JSON document."""
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


def replace(document: Any, path: tuple[Any, ...], value: Any) -> None:
    """Set the node at `path`, if the path still leads somewhere."""
    node = document
    for step in path[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    if isinstance(node, dict) or (
        isinstance(node, list) and isinstance(last, int) and last < len(node)
    ):
        node[last] = value


@st.composite
def mutated(draw: st.DrawFn, fixture: dict[str, Any]) -> dict[str, Any]:
    """A recorded payload with one to three nodes replaced by arbitrary JSON."""
    document = copy.deepcopy(fixture)
    every = list(paths(document))
    read = [path for path in READ if path in every]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["read", "any", "taint"]))
        if kind == "read":
            replace(document, draw(st.sampled_from(read)), draw(HOSTILE_TEXT | SCALARS))
        elif kind == "any":
            replace(document, draw(st.sampled_from(every)), draw(JSON))
        else:
            # Keep the shape, spoil the text: every string the parser reads gets a fragment.
            fragment = draw(st.sampled_from(FRAGMENTS) | HOSTILE_TEXT)
            for path in read:
                value = lookup(document, path)
                if isinstance(value, str):
                    replace(document, path, value + fragment)
    return document


def lookup(document: Any, path: tuple[Any, ...]) -> Any:
    """The node at `path`, or None."""
    node = document
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def call(app: WebApp, name: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    """One request through the WSGI app, in-process."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/webhooks/{name}",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        **{"HTTP_" + key.upper().replace("-", "_"): value for key, value in headers.items()},
    }
    answer: list[str] = []
    chunks = app(environ, lambda status, _headers: answer.append(status))
    return int(answer[0].split()[0]), json.loads(b"".join(chunks))


def counts(services: Services) -> tuple[int, int]:
    with services.db.session() as session:
        return (
            int(session.execute(select(func.count()).select_from(Task)).scalar_one()),
            int(session.execute(select(func.count()).select_from(SlackDelivery)).scalar_one()),
        )


@pytest.fixture
def config(config: AgentbotConfig) -> AgentbotConfig:
    """The webhook configuration with limits out of the way: each example may create."""
    roomy = LimitsConfig(
        open_tasks_per_requester=10_000, open_tasks_total=10_000, webhook_tasks_per_hour=10_000
    )
    return config.model_copy(update={"limits": roomy})


@pytest.fixture
def app(services: Services) -> WebApp:
    web = WebApp(services, build_app(services))
    register(web, services)
    return web


def unique_refs(payload: dict[str, Any], n: int) -> None:
    """Give each example its own issue, so creation is reached, not only de-duplication."""
    replace(payload, ("issue", "number"), n)
    replace(payload, ("data", "event", "issue_id"), str(n))
    replace(payload, ("issue", "key"), f"PAY-{n}")


def check(app: WebApp, services: Services, name: str, payload: Any, headers: dict[str, str]):
    body = json.dumps(payload).encode()
    secret = {"github": GITHUB_SECRET, "sentry": SENTRY_SECRET, "jira": JIRA_SECRET}[name]
    signature = sign(secret, body, prefix="" if name == "sentry" else "sha256=")
    header = {"github": "X-Hub-Signature-256", "sentry": "Sentry-Hook-Signature"}.get(
        name, "X-Hub-Signature"
    )
    before = counts(services)
    status, answer = call(app, name, body, {**headers, header: signature})
    assert status in ANSWERS, (status, answer)
    if status == 400:
        assert counts(services) == before, answer


FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SEQUENCE = itertools.count(1000)
GITHUB_ISSUE = load("github_issues_labeled.json")
GITHUB_COMMENT = load("github_issue_comment_created.json")
SENTRY_ALERT = load("sentry_event_alert.json")
JIRA_CREATED = load("jira_issue_created.json")
JIRA_UPDATED = load("jira_issue_updated.json")


def github_headers(event: str) -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4())}


def sentry_headers(resource: str = "event_alert") -> dict[str, str]:
    return {"Sentry-Hook-Resource": resource, "Request-ID": str(uuid.uuid4())}


def jira_headers() -> dict[str, str]:
    return {"X-Atlassian-Webhook-Identifier": str(uuid.uuid4())}


@FUZZ
@given(payload=mutated(GITHUB_ISSUE))
def test_github_issue_bodies(app: WebApp, services: Services, payload: Any) -> None:
    """Mutated `issues` deliveries: a documented answer, and 400 writes nothing."""
    unique_refs(payload, next(SEQUENCE))
    check(app, services, "github", payload, github_headers("issues"))


@FUZZ
@given(payload=mutated(GITHUB_COMMENT))
def test_github_comment_bodies(app: WebApp, services: Services, payload: Any) -> None:
    """Mutated `issue_comment` deliveries: a documented answer, and 400 writes nothing."""
    check(app, services, "github", payload, github_headers("issue_comment"))


@FUZZ
@given(payload=mutated(SENTRY_ALERT))
def test_sentry_alert_bodies(app: WebApp, services: Services, payload: Any) -> None:
    """Mutated issue alerts: a documented answer, and 400 writes nothing."""
    unique_refs(payload, next(SEQUENCE))
    check(app, services, "sentry", payload, sentry_headers())


@FUZZ
@given(payload=mutated(JIRA_CREATED) | mutated(JIRA_UPDATED))
def test_jira_issue_bodies(app: WebApp, services: Services, payload: Any) -> None:
    """Mutated Jira issue events: a documented answer, and 400 writes nothing."""
    unique_refs(payload, next(SEQUENCE))
    check(app, services, "jira", payload, jira_headers())


@FUZZ
@given(
    payload=st.dictionaries(
        st.sampled_from(["action", "issue", "label", "comment", "sender", "repository", "data"])
        | st.sampled_from(["webhookEvent", "changelog", "user", "installation"]),
        JSON,
    ),
    event=st.sampled_from(["issues", "issue_comment", "ping", "push"]),
    resource=st.sampled_from(["event_alert", "issue", "installation"]),
)
def test_arbitrary_objects(
    app: WebApp, services: Services, payload: Any, event: str, resource: str
) -> None:
    """Arbitrary JSON objects to every endpoint: a documented answer, and 400 writes nothing."""
    check(app, services, "github", payload, github_headers(event))
    check(app, services, "sentry", payload, sentry_headers(resource))
    check(app, services, "jira", payload, jira_headers())
