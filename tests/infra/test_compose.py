"""infra/compose: valid against the Compose specification, and wired the way we run."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import build_parser
from bot.settings import Settings, load_config_file

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "infra" / "compose" / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")
# Variables compose or the agent CLI read that are not Agentbot settings.
NOT_SETTINGS = {
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "ANTHROPIC_API_KEY",
    "AWS_REGION",
    "AWS_PROFILE",
}
NOT_SETTINGS |= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def agentbot_subcommands() -> set[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(action.choices)


def env_example_names() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=", line)
        if match:
            names.add(match[1])
    return names


def test_compose_file_matches_the_compose_specification(tmp_path: Path):
    """check-jsonschema with the Compose spec's own schema accepts it, and is not lenient."""
    result = validate(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        COMPOSE.read_text().replace(
            "condition: service_completed_successfully", "condition: when_it_feels_like_it"
        )
    )
    assert validate(broken).returncode != 0


def test_services_are_the_ones_we_run(compose: dict[str, Any]):
    """Bot, two workers, cron, Redis with AOF, PostgreSQL; migrations gate the rest."""
    services = compose["services"]
    assert set(services) == {"redis", "postgres", "migrate", "bot", "worker", "cron"}
    subcommands = agentbot_subcommands()
    for name in ("migrate", "bot", "worker", "cron"):
        command = services[name]["command"]
        assert command[0] in subcommands, f"{name}: agentbot has no {command[0]!r}"
        assert services[name]["image"] == services["bot"]["image"], "one image for all"
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in ("bot", "worker", "cron"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
    assert services["worker"]["deploy"]["replicas"] == 2
    assert "deploy" not in services["cron"], "exactly one scheduler"
    redis = services["redis"]
    assert "--appendonly" in redis["command"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert any("/var/lib/postgresql/data" in v for v in services["postgres"]["volumes"])
    env = services["bot"]["environment"]
    # Redis and PostgreSQL both require credentials.
    assert env["REDIS_URL"] == "redis://:${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}@redis:6379/0"
    password = redis["command"][redis["command"].index("--requirepass") + 1]
    assert password == "${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}"
    assert redis["environment"]["REDISCLI_AUTH"] == password, "the health check authenticates"
    assert env["DATABASE_URL"].startswith("postgresql://agentbot:")
    assert env["DATABASE_URL"].endswith("@postgres:5432/agentbot")


def test_the_worker_may_start_the_agent_sandbox(compose: dict[str, Any]):
    """The worker's container lets bubblewrap make its namespaces and mount a fresh /proc."""
    options = compose["services"]["worker"]["security_opt"]
    for needed in ("seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"):
        assert needed in options, needed
    assert "no-new-privileges:true" in options
    for name in ("bot", "cron"):
        assert "seccomp=unconfined" not in compose["services"][name]["security_opt"], name


def test_every_variable_is_documented_or_defaulted():
    """A ${VAR} with neither a default nor an entry in .env.example would be blank."""
    documented = env_example_names()
    for name, operator, _ in VARIABLE.findall(COMPOSE.read_text()):
        assert operator == ":-" or name in documented, f"${{{name}}} is undocumented"


def test_env_example_names_every_setting():
    """Every setting Agentbot reads is in .env.example, and nothing unknown is."""
    aliases = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        aliases |= {str(c) for c in choices} if choices else {str(alias)}
    documented = env_example_names()
    assert aliases - documented == set(), "settings missing from .env.example"
    assert documented - aliases - NOT_SETTINGS == set(), "unknown names in .env.example"


def test_example_configuration_loads():
    """The sample agentbot.toml compose mounts is a valid configuration."""
    config = load_config_file(ROOT / "infra" / "compose" / "agentbot.example.toml")
    assert config.repos[0].name == "acme/shop"
    assert config.agent.workspace_dir.startswith("/var/lib/agentbot")


def test_worker_health_check_command_runs(compose: dict[str, Any], redis_url: str):
    """The worker's health check is a real command: it passes with Redis, fails without."""
    test = compose["services"]["worker"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    command = [sys.executable, *test[2:]] if test[1] == "python" else test[1:]
    up = subprocess.run(command, env={**os.environ, "REDIS_URL": redis_url}, timeout=30)
    assert up.returncode == 0
    down = subprocess.run(
        command,
        env={**os.environ, "REDIS_URL": "redis://127.0.0.1:9/0"},
        capture_output=True,
        timeout=30,
    )
    assert down.returncode != 0
