"""infra/terraform: workers run on EC2 instances of their own, where the sandbox can start.

Fargate gives bubblewrap neither user namespaces nor an unmasked /proc, so the worker
service runs privileged on dedicated EC2 container instances (a capacity provider of
its own), while the bot and cron stay on Fargate and nothing else lands on those
instances. AWS's own data (the public SSM parameter tree, instance types) comes from
moto's server on loopback.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest

from tests.aws.fleet import moto_server
from tests.infra.dockerfile import parse as parse_dockerfile
from tests.infra.test_terraform import ROOT, TERRAFORM, Module, _data_block, unquote

ECS_AL2023_AMI = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
INSTANCE_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"


@pytest.fixture(scope="module")
def root() -> Module:
    return Module.load(TERRAFORM)


@pytest.fixture(scope="module")
def aws() -> Iterator[dict[str, Any]]:
    """boto3 clients of moto's server, for AWS's public data the Terraform relies on."""
    with moto_server() as endpoint:
        options: dict[str, Any] = {
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        yield {name: boto3.client(name, **options) for name in ("ssm", "ec2")}


def _blocks(module: Module, kind: str) -> dict[str, dict[str, Any]]:
    prefix = f"{kind}."
    return {n.removeprefix(prefix): r for n, r in module.resources.items() if n.startswith(prefix)}


def _container(module: Module, service: str) -> str:
    text: str = module.resources[f"aws_ecs_task_definition.{service}"]["container_definitions"]
    return text


def _default(module: Module, variable: str) -> Any:
    return module.variables[variable]["default"]


def test_worker_service_runs_on_the_worker_capacity_provider_not_fargate(root: Module):
    """The worker service places its tasks through the EC2 capacity provider, as EC2 tasks."""
    service = root.resources["aws_ecs_service.worker"]
    assert "launch_type" not in service
    (strategy,) = service["capacity_provider_strategy"]
    assert strategy["capacity_provider"] == "${aws_ecs_capacity_provider.worker.name}"
    definition = root.resources["aws_ecs_task_definition.worker"]
    assert [unquote(c) for c in definition["requires_compatibilities"]] == ["EC2"]
    assert unquote(definition["network_mode"]) == "awsvpc"
    assert "ephemeral_storage" not in definition  # Fargate-only; the instance disk serves
    assert service["network_configuration"][0]["security_groups"] == [
        "${aws_security_group.tasks.id}"
    ]
    provider = root.resources["aws_ecs_capacity_provider.worker"]
    group = provider["auto_scaling_group_provider"][0]
    assert group["auto_scaling_group_arn"] == "${aws_autoscaling_group.worker.arn}"


def test_bot_and_cron_stay_on_fargate(root: Module):
    """Only the workers moved: the bot and the scheduler are Fargate tasks as before."""
    for name in ("bot", "cron"):
        assert unquote(root.resources[f"aws_ecs_service.{name}"]["launch_type"]) == "FARGATE"
        definition = root.resources[f"aws_ecs_task_definition.{name}"]
        assert [unquote(c) for c in definition["requires_compatibilities"]] == ["FARGATE"]
        assert "privileged" not in _container(root, name)


def test_worker_container_is_privileged_as_the_images_non_root_user(root: Module):
    """The worker runs privileged (the sandbox needs it), as the image's user, never root."""
    worker = _container(root, "worker")
    assert re.search(r"\bprivileged = true\b", worker)
    (user,) = re.findall(r'\buser = "([^"]*)"', worker)
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    image_user = parse_dockerfile(ROOT / "Dockerfile").stage("runtime").all("USER")[-1].value
    assert user == image_user
    # ...who cannot become root again through a setuid binary (bubblewrap needs none).
    assert 'dockerSecurityOptions = ["no-new-privileges"]' in worker
    # Still its current settings: secrets, logs, read-only root, health check, stop time.
    for setting in (
        "secrets = local.secrets",
        "readonlyRootFilesystem = true",
        'aws_cloudwatch_log_group.this["worker"]',
        "healthCheck = {command = local.redis_ping",
        "stopTimeout = 120",
    ):
        assert setting in worker, setting


def _ecs_container_fields() -> set[str]:
    """Every field name a container definition may hold, from the ECS API's own model."""
    model = botocore.session.get_session().get_service_model("ecs")
    names: set[str] = set()
    seen: set[str] = set()
    pending = [model.shape_for("ContainerDefinition")]
    while pending:
        shape = pending.pop()
        if shape.name in seen:
            continue
        seen.add(shape.name)
        if shape.type_name == "structure":
            names |= set(shape.members)
            pending += shape.members.values()
        elif shape.type_name == "list":
            pending.append(shape.member)
        elif shape.type_name == "map":
            pending.append(shape.value)
    return names


def _unknown_fields(expression: str, known: set[str]) -> list[str]:
    # Object keys of the HCL expression; hyphenated ones are log-driver options.
    keys = re.findall(r"[{,]\s*([A-Za-z][\w-]*) = ", expression)
    return sorted({k for k in keys if "-" not in k} - known)


def test_container_definitions_use_only_the_ecs_apis_fields(root: Module):
    """ECS takes container definitions as they are: every field is one its API defines."""
    known = _ecs_container_fields()
    for name in ("bot", "worker", "cron"):
        assert _unknown_fields(_container(root, name), known) == [], name
    for local in ("environment", "secrets", "scratch_mounts"):
        value = root.locals[local]
        if isinstance(value, str):  # an expression (concat, for)
            assert _unknown_fields(value, known) == [], local
        else:
            assert set().union(*value) <= known, local
    misspelled = _container(root, "worker").replace("privileged =", "priviledged =")
    assert _unknown_fields(misspelled, known) == ["priviledged"]


def test_nothing_but_workers_is_placed_on_the_worker_instances(root: Module):
    """The worker capacity provider serves the worker service alone; the default is Fargate."""
    users = [
        name
        for name, body in _blocks(root, "aws_ecs_service").items()
        if "aws_ecs_capacity_provider.worker" in json.dumps(body)
    ]
    assert users == ["worker"]
    for name, body in _blocks(root, "aws_ecs_service").items():
        if name != "worker":
            assert unquote(body["launch_type"]) == "FARGATE", name
    for name, body in _blocks(root, "aws_ecs_task_definition").items():
        if name != "worker":
            assert [unquote(c) for c in body["requires_compatibilities"]] == ["FARGATE"], name
    cluster = root.resources["aws_ecs_cluster_capacity_providers.this"]
    assert cluster["cluster_name"] == "${aws_ecs_cluster.this.name}"
    (default,) = cluster["default_capacity_provider_strategy"]
    assert unquote(default["capacity_provider"]) == "FARGATE"
    # No other autoscaling group or launch template could bring other instances in.
    assert list(_blocks(root, "aws_autoscaling_group")) == ["worker"]
    assert list(_blocks(root, "aws_launch_template")) == ["worker"]


def test_launch_template_runs_the_ecs_optimized_al2023_image(root: Module, aws: dict[str, Any]):
    """The AMI is AWS's current ECS-optimized Amazon Linux 2023 image, for the task's CPU."""
    template = root.resources["aws_launch_template.worker"]
    parameter = r"\$\{data\.aws_ssm_parameter\.(\w+)\.insecure_value\}"
    match = re.fullmatch(parameter, template["image_id"])
    assert match, template["image_id"]
    name = unquote(_data_block(root, "aws_ssm_parameter", match[1])["name"])
    assert name == ECS_AL2023_AMI
    # The parameter exists in AWS's public tree, and names an x86_64 ECS image.
    image_id = aws["ssm"].get_parameter(Name=name)["Parameter"]["Value"]
    assert image_id.startswith("ami-")
    image_name = aws["ssm"].get_parameter(Name=name.replace("/image_id", "/image_name"))
    image_name = image_name["Parameter"]["Value"]
    assert image_name.startswith("al2023-ami-ecs-")
    platform = root.resources["aws_ecs_task_definition.worker"]["runtime_platform"][0]
    assert unquote(platform["cpu_architecture"]) == "X86_64"
    assert image_name.endswith("-x86_64")


def _user_data(root: Module) -> str:
    template = root.resources["aws_launch_template.worker"]
    assert template["user_data"] == "${base64encode(local.worker_instance_user_data)}"
    heredoc: str = root.locals["worker_instance_user_data"]
    body = heredoc.removeprefix('"<<-EOT\n').removesuffix('EOT"')
    return textwrap.dedent(body)


def test_instances_join_the_cluster_with_task_roles_and_no_metadata_for_tasks(
    root: Module, tmp_path: Path
):
    """user_data joins this cluster, turns task IAM roles on and keeps tasks off IMDS."""
    script = _user_data(root)
    assert script.startswith("#!/bin/bash\n")
    checked = tmp_path / "user-data.sh"
    checked.write_text(script)
    syntax = subprocess.run(["bash", "-n", str(checked)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    (config,) = re.findall(r"cat >> /etc/ecs/ecs.config <<'CONFIG'\n(.*?)\nCONFIG\n", script, re.S)
    settings = dict(line.split("=", 1) for line in config.splitlines())
    assert settings == {
        "ECS_CLUSTER": "${aws_ecs_cluster.this.name}",
        "ECS_ENABLE_TASK_IAM_ROLE": "true",
        "ECS_AWSVPC_BLOCK_IMDS": "true",
    }
    # bubblewrap, as a non-root user, needs user namespaces from the kernel.
    assert re.search(r"user\.max_user_namespaces = [1-9]\d*", script)
    options = root.resources["aws_launch_template.worker"]["metadata_options"][0]
    assert unquote(options["http_tokens"]) == "required"
    assert options["http_put_response_hop_limit"] == 1


def test_instance_role_holds_only_the_ecs_container_instance_policy(root: Module):
    """The instances' role is EC2's, with the ECS agent's managed policy and nothing more."""
    profile = root.resources["aws_launch_template.worker"]["iam_instance_profile"][0]
    assert profile["arn"] == "${aws_iam_instance_profile.worker_instance.arn}"
    instance_profile = root.resources["aws_iam_instance_profile.worker_instance"]
    assert instance_profile["role"] == "${aws_iam_role.worker_instance.name}"
    role = root.resources["aws_iam_role.worker_instance"]
    assert role["assume_role_policy"] == "${data.aws_iam_policy_document.ec2_assume.json}"
    (statement,) = _data_block(root, "aws_iam_policy_document", "ec2_assume")["statement"]
    (principal,) = statement["principals"]
    assert [unquote(i) for i in principal["identifiers"]] == ["ec2.amazonaws.com"]
    grants = [
        body
        for name, body in root.resources.items()
        if name.startswith(("aws_iam_role_policy.", "aws_iam_role_policy_attachment."))
        and "aws_iam_role.worker_instance." in json.dumps(body)
    ]
    assert [unquote(g.get("policy_arn", '""')) for g in grants] == [INSTANCE_POLICY]


def test_instances_accept_no_traffic_and_send_only_https(root: Module):
    """The instances' own interface has no ingress rule; its only egress is HTTPS."""
    assert root.resources["aws_launch_template.worker"]["vpc_security_group_ids"] == [
        "${aws_security_group.worker_instances.id}"
    ]
    rules = {
        name: body
        for name, body in root.resources.items()
        if name.startswith("aws_vpc_security_group_")
        and body["security_group_id"] == "${aws_security_group.worker_instances.id}"
    }
    assert not [n for n in rules if "_ingress_rule." in n]
    egress = [body for name, body in rules.items() if "_egress_rule." in name]
    assert [(e["from_port"], e["to_port"], unquote(e["ip_protocol"])) for e in egress] == [
        (443, 443, "tcp")
    ]
    # Nothing else references the group: no task, database or cache admits it.
    users = [
        name
        for name, body in root.resources.items()
        if "aws_security_group.worker_instances." in json.dumps(body) and name not in rules
    ]
    assert users == ["aws_launch_template.worker"]


def test_instances_follow_the_service_and_never_drop_a_busy_worker(root: Module):
    """Managed scaling sizes the group for the service; busy instances are protected."""
    provider = root.resources["aws_ecs_capacity_provider.worker"]["auto_scaling_group_provider"][0]
    assert unquote(provider["managed_termination_protection"]) == "ENABLED"
    scaling = provider["managed_scaling"][0]
    assert unquote(scaling["status"]) == "ENABLED" and scaling["target_capacity"] == 100
    group = root.resources["aws_autoscaling_group.worker"]
    assert group["protect_from_scale_in"] is True  # required by termination protection
    assert group["lifecycle"][0]["ignore_changes"] == ["desired_capacity"]
    tags = {unquote(t["key"]): t for t in group["tag"]}
    assert "AmazonECSManaged" in tags
    assert group["launch_template"][0]["id"] == "${aws_launch_template.worker.id}"
    assert group["min_size"] == "${var.worker_instance_min_count}"
    assert group["max_size"] == "${var.worker_instance_max_count}"
    assert group["vpc_zone_identifier"] == "${var.private_subnet_ids}"
    # The service's own autoscaling still drives the number of workers.
    target = root.resources["aws_appautoscaling_target.worker"]
    assert "aws_ecs_service.worker.name" in target["resource_id"]


def test_default_instances_hold_the_default_workers(root: Module, aws: dict[str, Any]):
    """At the defaults a worker fits an instance, and the most instances hold the most workers."""
    instance_type = unquote(_default(root, "worker_instance_type"))
    (described,) = aws["ec2"].describe_instance_types(InstanceTypes=[instance_type])[
        "InstanceTypes"
    ]
    assert "x86_64" in described["ProcessorInfo"]["SupportedArchitectures"]
    cpu_units = described["VCpuInfo"]["DefaultVCpus"] * 1024
    # ECS registers a little less memory than the instance has: the OS and the agent.
    memory = described["MemoryInfo"]["SizeInMiB"] * 0.9
    # awsvpc without trunking: one interface is the instance's, one per task after it.
    interfaces = described["NetworkInfo"]["MaximumNetworkInterfaces"] - 1
    per_instance = min(
        cpu_units // _default(root, "worker_cpu"),
        int(memory // _default(root, "worker_memory")),
        interfaces,
    )
    assert per_instance >= 1
    most = per_instance * _default(root, "worker_instance_max_count")
    assert most >= _default(root, "worker_max_count")
    assert _default(root, "worker_instance_min_count") <= _default(root, "worker_min_count")
    disk = _default(root, "worker_instance_volume_size")
    assert disk >= 50 * per_instance  # what each Fargate worker had of its own
