"""The shipped IAM policies allow exactly what the cost report, savings scan and actions call.

Every API operation is recorded with a botocore `before-call` hook on the base
session (hooks there reach every client made from it, assumed roles included) while
the real code runs against moto, then mapped to the IAM action that authorises it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from agents.aws.actions import ActionSpec, execute_action
from agents.aws.cost_config import ActionKind, OptimizeConfig
from agents.aws.optimize import find_savings
from bot.services import Services
from jobs.aws.cost_reports import make_report
from tests.cost.conftest import AWS, EAST, Clients, history, queue_ce_results
from tests.cost.estate import NOW, Estate

ROOT = Path(__file__).resolve().parents[2]
IAM = ROOT / "infra" / "iam"
MODULE = ROOT / "infra" / "terraform" / "modules" / "aws-status-role" / "main.tf"


def policy_actions(name: str) -> set[str]:
    """Every action a shipped policy allows."""
    policy = json.loads((IAM / name).read_text())
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        listed = statement["Action"]
        actions |= {listed} if isinstance(listed, str) else set(listed)
    return actions


class Recorder:
    """The IAM actions the API calls made through a session need."""

    def __init__(self, session: boto3.Session) -> None:
        self.actions: set[str] = set()
        session.events.register("before-call", self._record)

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        self.actions.add(f"{service}:{model.name}")
        # Tags given at creation are authorised as ec2:CreateTags on the new resource.
        body = params.get("body", {})
        if service == "ec2" and any(k.startswith("TagSpecification") for k in body):
            self.actions.add("ec2:CreateTags")

    def take(self) -> set[str]:
        """The actions recorded since the last take."""
        taken, self.actions = self.actions, set()
        return taken


def test_cost_report_and_savings_scan_need_exactly_the_cost_read_policy(
    services: Services, aws_endpoint: str, session: boto3.Session, estate: Estate
) -> None:
    """GetCostAndUsage plus the scan's Describe and metric reads: nothing more, nothing less."""
    recorder = Recorder(session)
    queue_ce_results(aws_endpoint, {"ResultsByTime": history(date(2025, 3, 14), 42)})
    report = make_report(
        services.db,
        services.redis,
        services.config,
        lambda: session,
        "yesterday",
        kind="test",
        now=datetime(2025, 3, 15, 10, tzinfo=UTC),
    )
    assert report.ce_calls == 1
    assert recorder.take() == {"ce:GetCostAndUsage"}

    savings = find_savings(session, AWS, OptimizeConfig(), now=NOW)
    assert savings.errors == [] and len(savings.recommendations) == 6
    scan = recorder.take()
    # Staging is reached through its role; the bot's own assume-role policy covers that.
    assert "sts:AssumeRole" in scan
    assert scan - {"sts:AssumeRole"} | {"ce:GetCostAndUsage"} == policy_actions(
        "aws-cost-read.json"
    )
    assert policy_actions("aws-status-assume-role.json") == {"sts:AssumeRole"}


def test_actions_need_the_cost_read_policy_and_exactly_the_actions_policy(
    session: boto3.Session, estate: Estate
) -> None:
    """Each action's checks are reads already granted; its dry run and change are in the
    opt-in actions policy, and the four actions together use all of it."""
    recorder = Recorder(session)
    ec2 = Clients(session)("ec2")
    read = policy_actions("aws-cost-read.json")
    writes = policy_actions("aws-actions.json")
    needed: dict[ActionKind, set[str]] = {}
    for kind, resource in (
        (ActionKind.STOP_INSTANCE, estate.idle),
        (ActionKind.DELETE_VOLUME, estate.scratch),
        (ActionKind.RELEASE_ADDRESS, estate.free_ip),
        (ActionKind.MIGRATE_GP3, estate.web_data),
    ):
        spec = ActionSpec(kind=kind, account="prod", region=EAST, resource_id=resource)
        execute_action(ec2, spec)
        needed[kind] = recorder.take()

    assert needed[ActionKind.STOP_INSTANCE] - read == {"ec2:StopInstances"}
    assert needed[ActionKind.DELETE_VOLUME] - read == {
        "ec2:CreateSnapshot",
        "ec2:CreateTags",
        "ec2:DeleteVolume",
    }
    assert needed[ActionKind.RELEASE_ADDRESS] - read == {"ec2:ReleaseAddress"}
    assert needed[ActionKind.MIGRATE_GP3] - read == {
        "ec2:ModifyVolume",
        "ec2:DescribeVolumesModifications",
    }
    assert set().union(*needed.values()) - read == writes
    assert not writes & read


def test_actions_policy_tags_only_the_snapshot_it_creates() -> None:
    """CreateTags is allowed on snapshots, and only as part of CreateSnapshot."""
    policy = json.loads((IAM / "aws-actions.json").read_text())
    [tags] = [s for s in policy["Statement"] if "ec2:CreateTags" in s["Action"]]
    assert tags["Resource"] == "arn:aws:ec2:*::snapshot/*"
    assert tags["Condition"] == {"StringEquals": {"ec2:CreateAction": "CreateSnapshot"}}
    resources = [s["Resource"] for s in policy["Statement"]]
    assert "*" in resources  # DescribeVolumesModifications has no resource-level permission
    assert sum(r == "*" for r in resources) == 1


@pytest.mark.parametrize(("variable", "default"), [("cost_read", "true"), ("actions", "false")])
def test_terraform_module_attaches_each_policy_behind_its_switch(
    variable: str, default: str
) -> None:
    """The role module reads the shipped files, with actions off unless asked for."""
    main = MODULE.read_text()
    variables = (MODULE.parent / "variables.tf").read_text()
    files = re.findall(r'file\("\$\{path\.module\}/\.\./\.\./\.\./iam/([\w.-]+)"\)', main)
    assert sorted(files) == ["aws-actions.json", "aws-cost-read.json", "aws-status-readonly.json"]
    assert all((IAM / name).is_file() for name in files)
    assert re.search(rf"count\s*=\s*var\.{variable} \? 1 : 0", main)
    # Actions read through the cost-read policy, so they cannot be had without it.
    actions = main[main.index('resource "aws_iam_role_policy" "actions"') :]
    assert re.search(r"precondition\s*{\s*condition\s*=\s*var\.cost_read\b", actions)
    block = variables[variables.index(f'variable "{variable}"') :]
    found = re.search(r"default\s*=\s*(\w+)", block)
    assert found is not None and found.group(1) == default
