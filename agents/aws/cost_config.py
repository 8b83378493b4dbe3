"""Configuration of cost reports, the daily digest, savings recommendations and actions.

It is the `[cost]` part of the `AGENTBOT_CONFIG` TOML file. Which accounts exist and
who stewards what come from `[aws]` (`agents.aws.config.AwsConfig`); this section only
says how to read, present and act on the money.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.aws.prices import PriceTable

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")

CostMetric = Literal["UnblendedCost", "AmortizedCost", "NetAmortizedCost"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)


class ActionKind(StrEnum):
    """A change to AWS that a savings recommendation can become."""

    STOP_INSTANCE = "stop_instance"
    DELETE_VOLUME = "delete_volume"
    RELEASE_ADDRESS = "release_address"
    MIGRATE_GP3 = "migrate_gp3"


# Changes that cannot be undone as they were: a deleted volume survives only as its
# snapshot, a released address is gone. (A stopped instance starts again; gp3 can go
# back to gp2.)
IRREVERSIBLE: frozenset[ActionKind] = frozenset(
    {ActionKind.DELETE_VOLUME, ActionKind.RELEASE_ADDRESS}
)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DigestConfig(_Strict):
    """When and where the daily digest is posted, and when it stays quiet."""

    channel: str | None = Field(
        None, description="Slack channel id (C…) of the digest; no channel, no digest"
    )
    time: dt.time = Field(dt.time(9, 0), description="local time of day to post, HH:MM")
    timezone: str = Field("UTC", description="IANA zone of `time`, e.g. Europe/Paris")
    notify: Literal["always", "above_threshold", "on_increase"] = Field(
        "always",
        description="always post; only when yesterday's total is above `threshold_usd`; or "
        "only when it rose against the day before. Anomalies and a budget at risk always post.",
    )
    threshold_usd: float | None = Field(None, ge=0)
    weekly_savings_day: Weekday | None = Field(
        "monday", description="weekday whose digest adds the savings recommendations; none: never"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Paris)") from None
        return value

    @field_validator("channel")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        if value is not None and not _CHANNEL.match(value):
            raise ValueError(f"{value!r} is not a Slack channel id (C…); use the id, not #name")
        return value

    @model_validator(mode="after")
    def _threshold_given(self) -> DigestConfig:
        if self.notify == "above_threshold" and self.threshold_usd is None:
            raise ValueError("notify = 'above_threshold' needs threshold_usd")
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The digest's time zone."""
        return ZoneInfo(self.timezone)


class AnomalyConfig(_Strict):
    """The robust z-score test applied to each service's daily cost."""

    baseline_days: int = Field(28, ge=7, le=90, description="days before the day tested")
    min_baseline_days: int = Field(14, ge=5, description="fewer known days: no verdict")
    z_threshold: float = Field(3.5, gt=0, description="|modified z| at or above: anomaly")
    min_dollars: float = Field(
        10.0, ge=0, description="smaller departures from the median are never anomalies"
    )

    @model_validator(mode="after")
    def _enough_days(self) -> AnomalyConfig:
        if self.min_baseline_days > self.baseline_days:
            raise ValueError("min_baseline_days cannot exceed baseline_days")
        return self


class OptimizeConfig(_Strict):
    """What counts as waste, and what it costs."""

    idle_cpu_percent: float = Field(5.0, gt=0, le=100, description="average CPU below: idle")
    idle_days: int = Field(14, ge=1, le=63, description="CloudWatch window for idle instances")
    stopped_days: int = Field(7, ge=1, description="stopped longer than this: long-stopped")
    snapshot_age_days: int = Field(90, ge=1, description="snapshots older than this are old")
    min_monthly_savings: float = Field(
        1.0, ge=0, description="recommendations saving less per month are left out"
    )
    prices: dict[str, PriceTable] = Field(
        default_factory=dict,
        description="per-region overrides of the price table; missing keys keep the defaults",
    )

    @field_validator("prices")
    @classmethod
    def _regions(cls, value: dict[str, PriceTable]) -> dict[str, PriceTable]:
        for region in value:
            if region != "default" and not _REGION.fullmatch(region):
                raise ValueError(f"{region!r} is not an AWS region name (or 'default')")
        return value

    def price_table(self, region: str) -> PriceTable:
        """The prices for a region: the built-in table, then `default`, then the region's."""
        table = PriceTable()
        for key in ("default", region):
            override = self.prices.get(key)
            if override is not None:
                table = table.merged(override)
        return table


class ActionsConfig(_Strict):
    """Whether recommendations may become changes to AWS, and which need no approval.

    Every action waits for approvers unless its kind is listed in `auto_approve` and
    the EC2 steward's autonomy is at least `autonomy_threshold`. Nothing is listed by
    default, so the irreversible kinds (delete_volume, release_address) can only skip
    approval when an operator names them.
    """

    enabled: bool = Field(False, description="off: recommendations are advice only")
    allowed: tuple[ActionKind, ...] = Field(
        tuple(ActionKind), description="which kinds of action may be created and executed"
    )
    autonomy_threshold: int | None = Field(
        None,
        ge=0,
        le=10,
        description="a steward at or above this autonomy acts without approval, for the "
        "kinds in auto_approve only; unset (the default): every action waits for approvers",
    )
    auto_approve: tuple[ActionKind, ...] = Field(
        (),
        description="kinds that may run without approval when the steward's autonomy "
        "reaches autonomy_threshold; none by default",
    )

    @model_validator(mode="after")
    def _auto_approve_is_possible(self) -> ActionsConfig:
        if self.auto_approve and self.autonomy_threshold is None:
            raise ValueError("auto_approve needs autonomy_threshold (the steward level required)")
        unknown = [kind.value for kind in self.auto_approve if kind not in self.allowed]
        if unknown:
            raise ValueError(f"auto_approve lists kinds that are not allowed: {', '.join(unknown)}")
        return self

    def runs_unapproved(self, kind: ActionKind, autonomy: int) -> bool:
        """Whether an action of this kind, under a steward of this autonomy, skips approval."""
        return (
            self.enabled
            and kind in self.allowed
            and kind in self.auto_approve
            and self.autonomy_threshold is not None
            and autonomy >= self.autonomy_threshold
        )


class CostConfig(_Strict):
    """The `[cost]` section."""

    metric: CostMetric = "UnblendedCost"
    include_credits_refunds: bool = Field(
        False, description="false: Cost Explorer's Credit and Refund record types are left out"
    )
    payer_account: str | None = Field(
        None,
        description="name of the [aws] account whose credentials call Cost Explorer "
        "(the management/payer account); default: the first account",
    )
    provisional_refresh_hours: float = Field(
        8.0,
        ge=0,
        description="a day Cost Explorer marked Estimated is fetched again once it is older",
    )
    monthly_budget_usd: float | None = Field(None, gt=0)
    top_services: int = Field(5, ge=1, le=10)
    digest: DigestConfig = DigestConfig()
    anomaly: AnomalyConfig = AnomalyConfig()
    optimize: OptimizeConfig = OptimizeConfig()
    actions: ActionsConfig = ActionsConfig()

    @property
    def record_types_note(self) -> str:
        """What the numbers include, as every report says it."""
        if self.include_credits_refunds:
            return "credits and refunds included"
        return "credits and refunds excluded"

    @property
    def basis(self) -> str:
        """Key of the record-type filter, stored with each cost so the two never mix."""
        return "all" if self.include_credits_refunds else "no-credits-refunds"
