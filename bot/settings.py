"""Process configuration: environment variables plus the TOML file they point at.

`Settings` is the one root of the configuration: the environment (and `.env`), and in
`Settings.config` the validated AGENTBOT_CONFIG file (`jobs.config.AgentbotConfig`,
which composes the sections defined where they are used). Each is read once, through
the cached `get_settings()`, and each layer is handed its part by argument.

Nothing else reads `os.environ`, with two deliberate exceptions: the allowlist of what
the coding agent and the test commands inherit (`agents.env`, with the runner), and the
local sandbox (`sandbox.dev`), which sets up its own process environment.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.env import secret_leaks
from bot.logging import secrets_of
from jobs.config import AgentbotConfig
from jobs.database_url import normalize_url

if TYPE_CHECKING:
    import boto3

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "xoxb-your-token", "secret"}
# What redis-py's `Redis.from_url` accepts, plus the sandbox's in-process server.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "memory://")


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line that names it."""


def _known_redis_scheme(value: str) -> str:
    if not value.startswith(REDIS_SCHEMES):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return value


class Settings(BaseSettings):
    """Settings from the environment or a `.env` file, named as in the product brief."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    environment: Literal["local", "production"] = Field(
        "production", validation_alias=AliasChoices("AGENTBOT_ENV")
    )
    slack_bot_token: SecretStr = Field(SecretStr(""), validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr = Field(SecretStr(""), validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr = Field(SecretStr(""), validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(DEFAULT_SLACK_API_URL, validation_alias="SLACK_API_URL")
    database_url: str = Field("sqlite:///agentbot.db", validation_alias="DATABASE_URL")
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    github_token: SecretStr = Field(SecretStr(""), validation_alias="GITHUB_TOKEN")
    github_api_url: str = Field("https://api.github.com", validation_alias="GITHUB_API_URL")
    github_webhook_secret: SecretStr = Field(
        SecretStr(""), validation_alias="GITHUB_WEBHOOK_SECRET"
    )
    sentry_client_secret: SecretStr = Field(SecretStr(""), validation_alias="SENTRY_CLIENT_SECRET")
    jira_webhook_secret: SecretStr = Field(SecretStr(""), validation_alias="JIRA_WEBHOOK_SECRET")
    # When set, GET /metrics wants `Authorization: Bearer <token>`, as Prometheus sends
    # with `authorization: {credentials: …}` in its scrape config.
    metrics_token: SecretStr = Field(SecretStr(""), validation_alias="METRICS_TOKEN")
    port: int = Field(3000, validation_alias="PORT", ge=1, le=65535)
    # Seconds `serve` waits for a request's whole body once its headers are in; a
    # client still sending after that is answered 408 and disconnected.
    request_body_timeout: float = Field(10.0, validation_alias="REQUEST_BODY_TIMEOUT", gt=0, le=300)
    config_path: Path | None = Field(None, validation_alias="AGENTBOT_CONFIG")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    # boto3 reads AWS_PROFILE itself but not AWS_REGION (only AWS_DEFAULT_REGION), and
    # neither from `.env`; `aws_session()` passes both on.
    aws_region: str | None = Field(None, validation_alias="AWS_REGION")
    aws_profile: str | None = Field(None, validation_alias="AWS_PROFILE")
    # Injected by the ECS container agent into every task's containers; workers use it
    # to protect their task from scale-in while a job runs. Unset elsewhere.
    ecs_agent_uri: str | None = Field(None, validation_alias="ECS_AGENT_URI")
    # The file AGENTBOT_CONFIG names, once read (`config`).
    _config: AgentbotConfig | None = PrivateAttr(None)

    @field_validator("slack_api_url")
    @classmethod
    def _slack_api_url_ends_with_slash(cls, value: str) -> str:
        # WebClient joins method names onto the base URL; without the slash it
        # would produce ".../apichat.postMessage".
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("database_url")
    @classmethod
    def _database_url_is_usable(cls, value: str) -> str:
        # Parse it and load its driver now, so a typo fails at start with the
        # setting's name instead of as a traceback at the first query.
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            url = make_url(normalize_url(value))
            url.get_dialect().import_dbapi()
        except ArgumentError:
            raise ValueError("not a database URL (e.g. postgresql://user@host/db)") from None
        except NoSuchModuleError:
            raise ValueError("unknown database kind; use postgresql:// or sqlite://") from None
        except ImportError:
            raise ValueError("the database driver for this URL is not installed") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_has_a_known_scheme(cls, value: str) -> str:
        return _known_redis_scheme(value)

    def require_slack(self, *, socket_mode: bool = False) -> None:
        """Fail fast when the Slack credentials a server needs are missing.

        Args:
            socket_mode: Also require the app-level token used by Socket Mode.

        Raises:
            ConfigError: Naming the first missing or placeholder setting.
        """
        self.require_bot_token()
        name, value = (
            ("SLACK_APP_TOKEN", self.slack_app_token)
            if socket_mode
            else ("SLACK_SIGNING_SECRET", self.slack_signing_secret)
        )
        _require(name, value)

    def require_bot_token(self) -> None:
        """Fail fast when SLACK_BOT_TOKEN, which workers post to Slack with, is missing.

        Raises:
            ConfigError: Naming SLACK_BOT_TOKEN.
        """
        _require("SLACK_BOT_TOKEN", self.slack_bot_token)

    def aws_session(self) -> boto3.Session:
        """The bot's own AWS session, with the profile and region of these settings.

        Build it here and nowhere else. Everything else boto3 reads from its standard
        configuration (`AWS_ENDPOINT_URL`, `AWS_DEFAULT_REGION`, the shared config and
        credentials files, instance and task roles) still applies.

        Raises:
            ConfigError: AWS_PROFILE names a profile the AWS config files do not have.
        """
        import boto3
        from botocore.exceptions import ProfileNotFound

        try:
            return boto3.Session(
                profile_name=self.aws_profile or None, region_name=self.aws_region or None
            )
        except ProfileNotFound:
            raise ConfigError(
                f"AWS_PROFILE: no profile {self.aws_profile!r} in the AWS config files"
            ) from None

    @property
    def config(self) -> AgentbotConfig:
        """The TOML file named by AGENTBOT_CONFIG (defaults when unset), read once.

        It is read and validated on first use, which every command does at start, and
        kept: the processes a server forks, and every layer handed a part of it, see the
        same file as it was then.

        Raises:
            ConfigError: When the file is missing, unreadable or invalid.
        """
        if self._config is None:
            config = (
                AgentbotConfig() if self.config_path is None else load_config_file(self.config_path)
            )
            self._refuse_secrets_in(config)
            self._config = config
        return self._config

    def with_config(self, config: AgentbotConfig) -> Settings:
        """These settings with `config` in place of the file's (tests, the sandbox's AWS).

        Raises:
            ConfigError: A variable `config` gives tests or the agent holds a bot secret.
        """
        self._refuse_secrets_in(config)
        settings = self.model_copy()
        settings._config = config
        return settings

    def _refuse_secrets_in(self, config: AgentbotConfig) -> None:
        """No variable a test command or the agent carries may hold one of our secrets.

        The names are refused when the file is read; this catches a value: a token pasted
        into `set`, or a passed-through variable that happens to hold it.

        Raises:
            ConfigError: Naming the variable, never its value.
        """
        secrets = [*secrets_of(self), self.database_url, self.redis_url]
        for where, environment in config.environments():
            leaks = secret_leaks(environment.carried(), secrets)
            if leaks:
                raise ConfigError(
                    f"AGENTBOT_CONFIG: {where}: {leaks[0]} holds one of the bot's own "
                    "secrets; it never reaches tests or the agent"
                )


def _require(name: str, value: SecretStr) -> None:
    if value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
        raise ConfigError(f"{name} is not set")


class DevEnvironment(BaseSettings):
    """What `agentbot dev` takes from the process environment (never from `.env`).

    The sandbox brings its own Slack, database and credentials, so the variables it
    replaces are not read here: a production DATABASE_URL in the shell, valid or not,
    has no say in it. None means the variable is not set.
    """

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    log_level: str | None = Field(None, validation_alias="LOG_LEVEL")

    @field_validator("redis_url")
    @classmethod
    def _redis_url_has_a_known_scheme(cls, value: str | None) -> str | None:
        return None if value is None else _known_redis_scheme(value)


def read_dev_environment() -> DevEnvironment:
    """Read what the sandbox takes from the process environment.

    Raises:
        ConfigError: `NAME: what is wrong`, for the first invalid variable.
    """
    try:
        return DevEnvironment()
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


def load_config_file(path: Path) -> AgentbotConfig:
    """Parse and validate one configuration file.

    Raises:
        ConfigError: One line naming the file and the offending key.
    """
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"AGENTBOT_CONFIG: file not found: {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"AGENTBOT_CONFIG: cannot read {path}: {exc}") from None
    try:
        return AgentbotConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"AGENTBOT_CONFIG: {first_error(exc)}") from None


def first_error(exc: ValidationError) -> str:
    """Render the first validation error as `dotted.path: message`."""
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"]) or "(root)"
    return f"{location}: {error['msg']}"


def setting_name(field: str) -> str:
    """The environment variable a `Settings` field is read from (e.g. AGENTBOT_CONFIG)."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return field.upper()


def read_settings(*, env_file: bool = True) -> Settings:
    """Read the settings, turning a validation error into one line naming the variable.

    Args:
        env_file: Also read `.env` (the sandbox reads only the process environment).

    Raises:
        ConfigError: `NAME: what is wrong`, for the first invalid setting.
    """
    try:
        return Settings() if env_file else Settings(_env_file=None)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


def _one_line(exc: ValidationError) -> str:
    """`NAME: what is wrong` for the first error of a settings model."""
    error = exc.errors()[0]
    name = setting_name(str(error["loc"][0])) if error["loc"] else "settings"
    message = " ".join(str(error["msg"]).removeprefix("Value error, ").split())
    return f"{name}: {message}"


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read once. Tests clear the cache to override."""
    return read_settings()
