"""The moto server the AWS tests share: one per test session, on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.aws.fleet import moto_server


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the whole session, on a free loopback port."""
    with moto_server() as endpoint:
        yield endpoint
