"""AWS test set-up shared by the modules here: moto on loopback, the seeded fleet, clean scans."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from sqlalchemy import text

from bot.services import Services
from tests.aws.fleet import Fleet, moto_server, point_aws_at, reset_moto, seed_fleet


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the whole session, on a free loopback port."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def aws_env(moto_endpoint: str) -> Iterator[str]:
    """For the module: moto emptied, and boto3's default chain reaching it and nothing else.

    Yields:
        The moto endpoint.
    """
    with pytest.MonkeyPatch.context() as env:
        reset_moto(moto_endpoint)
        point_aws_at(env, moto_endpoint)
        yield moto_endpoint


@pytest.fixture(scope="module")
def fleet(aws_env: str) -> Fleet:
    """The two-account, two-region fleet (every kind of trouble), seeded once per module."""
    return seed_fleet(boto3.Session())


@pytest.fixture
def no_snapshots(services: Services) -> None:
    """No stored scans, so each test's first ask scans."""
    with services.db.engine.begin() as connection:
        connection.execute(text("TRUNCATE aws_scans, aws_scan_resources RESTART IDENTITY CASCADE"))
