"""infra/terraform: Terraform's own parser accepts it, and its references resolve.

The Terraform binary is not installable from the registries this project uses, so
`terraform validate` is approximated: syntax by HashiCorp's HCL parser (tests/infra/hcl),
then, per module, every var./local./module./data./resource reference must be declared,
module calls must pass exactly known and all required variables, and file() paths must
exist. Provider schemas (argument names of AWS resources) are not checked here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest

from bot.settings import Settings, load_config_file
from jobs.config import JobConfig
from jobs.ecs_protection import MAX_MINUTES, protection_minutes
from tests.infra import hcl
from tests.infra.dockerfile import parse as parse_dockerfile

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "infra" / "terraform"
MODULE_DIRS = (TERRAFORM, TERRAFORM / "modules" / "aws-status-role", TERRAFORM / "member-account")
REFERENCE = re.compile(
    r"(?<![\w.])(var|local|module|data)\.(\w+)(?:\.(\w+))?|(?<![\w.])((?:aws|random)_\w+)\.(\w+)"
)


def unquote(value: str) -> str:
    """The value of an HCL string literal as python-hcl2 returns it (quotes kept)."""
    decoded: str = json.loads(value)
    return decoded


def name_of(block: dict[str, Any]) -> str:
    return unquote(next(iter(block)))


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@dataclass
class Module:
    """What one directory of .tf files declares."""

    path: Path
    documents: list[dict[str, Any]] = field(default_factory=list)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: set[str] = field(default_factory=set)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path) -> Module:
        module = cls(path)
        for tf in sorted(path.glob("*.tf")):
            with tf.open() as handle:
                document = hcl2.load(handle)
            module.documents.append(document)
            for block in document.get("variable", []):
                module.variables[name_of(block)] = next(iter(block.values()))
            for block in document.get("locals", []):
                module.locals.update({k: v for k, v in block.items() if not k.startswith("__")})
            for block in document.get("resource", []):
                kind = name_of(block)
                for name, body in next(iter(block.values())).items():
                    module.resources[f"{kind}.{unquote(name)}"] = body
            for block in document.get("data", []):
                kind = name_of(block)
                module.data |= {f"{kind}.{unquote(n)}" for n in next(iter(block.values()))}
            for block in document.get("module", []):
                module.modules[name_of(block)] = next(iter(block.values()))
            for block in document.get("output", []):
                module.outputs.add(name_of(block))
        return module

    def references(self) -> Iterator[tuple[str, ...]]:
        for document in self.documents:
            for text in strings(document):
                for match in REFERENCE.finditer(text):
                    yield tuple(g for g in match.groups() if g)


@pytest.fixture(scope="module")
def modules() -> dict[Path, Module]:
    return {path: Module.load(path) for path in MODULE_DIRS}


def test_terraform_parser_accepts_every_file():
    """HashiCorp's HCL parser reads every file; a broken file is reported, not accepted."""
    files = hcl.read_all(TERRAFORM)
    files["terraform.tfvars.example"] = (TERRAFORM / "terraform.tfvars.example").read_text()
    assert len(files) >= 12
    assert hcl.syntax_errors(files) == {}
    broken = {"broken.tf": files["alb.tf"].replace("priority     = 10\n", "priority = [10\n")}
    assert "Missing item separator" in hcl.syntax_errors(broken)["broken.tf"]


def unresolved(module: Module) -> list[str]:
    """References in `module` to nothing it declares, and variables it never uses."""
    problems = []
    for ref in module.references():
        kind = ref[0]
        if kind == "var":
            ok = ref[1] in module.variables
        elif kind == "local":
            ok = ref[1] in module.locals
        elif kind == "data":
            ok = f"{ref[1]}.{ref[2]}" in module.data
        elif kind == "module":
            ok = ref[1] in module.modules
            if ok and len(ref) > 2:
                source = module.path / unquote(module.modules[ref[1]]["source"])
                ok = ref[2] in Module.load(source).outputs
        else:
            ok = f"{ref[0]}.{ref[1]}" in module.resources
        if not ok:
            problems.append(".".join(ref))
    used = {r[1] for r in module.references() if r[0] == "var"}
    problems += [f"unused var.{name}" for name in sorted(set(module.variables) - used)]
    return problems


def test_every_reference_is_declared(modules: dict[Path, Module], tmp_path: Path):
    """var., local., module., data. and resource references name something declared."""
    for path, module in modules.items():
        assert unresolved(module) == [], path.relative_to(ROOT)
    (tmp_path / "main.tf").write_text(
        (TERRAFORM / "logs.tf").read_text().replace("var.log_retention_days", "var.retention")
    )
    assert unresolved(Module.load(tmp_path)) == ["var.name", "var.retention"]


def test_module_calls_pass_known_and_required_variables(modules: dict[Path, Module]):
    """Each module call's arguments are the module's variables, all required ones given."""
    calls = 0
    for path, module in modules.items():
        for name, call in module.modules.items():
            target = Module.load((path / unquote(call["source"])).resolve())
            given = {k for k in call if k not in ("source", "__is_block__")}
            assert given <= set(target.variables), (
                f"{name}: unknown {given - set(target.variables)}"
            )
            required = {v for v, body in target.variables.items() if "default" not in body}
            assert required <= given, f"{name}: missing {required - given}"
            calls += 1
    assert calls == 2


def test_aws_actions_is_the_status_roles_opt_in(modules: dict[Path, Module]):
    """The main stack's `aws_actions` (off by default) decides the role's `actions` policy."""
    root = modules[TERRAFORM]
    assert root.variables["aws_actions"]["type"] == "bool"
    assert root.variables["aws_actions"]["default"] is False
    assert root.modules["aws_status_role"]["actions"] == "${var.aws_actions}"
    # ...which attaches the actions policy only when it is true.
    role = modules[TERRAFORM / "modules" / "aws-status-role"]
    policy = role.resources["aws_iam_role_policy.actions"]
    assert policy["count"] == "${var.actions ? 1 : 0}"
    assert "aws-actions.json" in policy["policy"]
    tfvars = hcl2.load((TERRAFORM / "terraform.tfvars.example").open())
    assert tfvars["aws_actions"] is False  # documented, and left off


def test_file_paths_exist_and_hold_iam_policies(modules: dict[Path, Module]):
    """file() reads the repository's IAM documents, which are valid policies."""
    read = []
    for path, module in modules.items():
        for text in (t for d in module.documents for t in strings(d)):
            for target in re.findall(r'file\("([^"]+)"\)', text.replace('\\"', '"')):
                resolved = (path / target.replace("${path.module}/", "")).resolve()
                assert resolved.is_file(), f"{path}: {target}"
                read.append(resolved)
    assert {p.name for p in read} == {
        "aws-status-readonly.json",
        "aws-status-assume-role.json",
        "aws-cost-read.json",
        "aws-actions.json",  # opt-in: the changes approved savings actions make
    }
    for name in ("aws-status-readonly.json", "aws-cost-read.json"):
        readonly = json.loads((ROOT / "infra" / "iam" / name).read_text())
        actions = [a for s in readonly["Statement"] for a in _as_list(s["Action"])]
        assert actions and all(s["Effect"] == "Allow" for s in readonly["Statement"])
        changes = ("Create", "Delete", "Put", "Stop", "Modify")
        assert not [a for a in actions if a.split(":")[1].startswith(changes)], name
    assume = json.loads((ROOT / "infra" / "iam" / "aws-status-assume-role.json").read_text())
    role = Module.load(TERRAFORM / "modules" / "aws-status-role").variables["role_name"]
    resources = [r for s in assume["Statement"] for r in _as_list(s["Resource"])]
    assert any(r.endswith(f":role/{unquote(role['default'])}") for r in resources)


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def test_services_run_the_right_processes(modules: dict[Path, Module]):
    """Bot after migrations, behind the ALB on Slack's paths only; workers scale; one cron."""
    root = modules[TERRAFORM]
    for service in ("bot", "worker", "cron"):
        assert f"aws_ecs_service.{service}" in root.resources
        definition = root.resources[f"aws_ecs_task_definition.{service}"]
        containers = definition["container_definitions"]
        expected = "serve" if service == "bot" else service
        assert f'command = ["{expected}"]' in containers
        assert "readonlyRootFilesystem = true" in containers
        assert f'aws_cloudwatch_log_group.this["{service}"]' in containers
    # Fargate bind mounts are writable by the image's user only on its VOLUME paths.
    runtime = parse_dockerfile(ROOT / "Dockerfile").stage("runtime")
    volumes = set(json.loads(runtime.all("VOLUME")[-1].value))
    mounted = {unquote(m["containerPath"]) for m in _mounts(root)}
    assert mounted and mounted <= volumes, mounted - volumes
    bot = root.resources["aws_ecs_task_definition.bot"]["container_definitions"]
    assert 'command = ["migrate"]' in bot
    assert 'dependsOn = [{containerName = "migrate", condition = "SUCCESS"}]' in bot
    cron = root.resources["aws_ecs_service.cron"]
    assert cron["desired_count"] == 1 and cron["deployment_maximum_percent"] == 100
    assert "aws_appautoscaling_target.worker" in root.resources
    rule = root.resources["aws_lb_listener_rule.slack_and_webhooks"]
    paths = rule["condition"][0]["path_pattern"][0]["values"]
    assert [unquote(p) for p in paths] == ["/slack/events", "/webhooks/*"]
    health = root.resources["aws_lb_target_group.bot"]["health_check"][0]
    assert unquote(health["path"]) == "/readyz"
    redis = root.resources["aws_elasticache_replication_group.this"]
    assert redis["transit_encryption_enabled"] is True and redis["at_rest_encryption_enabled"]
    assert root.resources["aws_db_instance.this"]["storage_encrypted"] is True


def test_worker_autoscaling_scales_in_only_tasks_the_workers_leave_unprotected(
    modules: dict[Path, Module],
):
    """Workers are added under load and removed when idle; busy ones protect their task.

    A stopped worker task gets at most 120 s (stopTimeout) to finish its job, far less
    than an execute job may take: scale-in is safe only because the worker holds ECS task
    scale-in protection for each job (jobs.ecs_protection), which the task role permits.
    """
    root = modules[TERRAFORM]
    policies = [
        resource
        for name, resource in root.resources.items()
        if name.startswith("aws_appautoscaling_policy.")
        and "aws_appautoscaling_target.worker" in json.dumps(resource)
    ]
    assert policies, "the workers do not scale at all"
    for policy in policies:
        config = policy["target_tracking_scaling_policy_configuration"][0]
        assert config["disable_scale_in"] is False
        assert config["scale_in_cooldown"] == "${var.worker_scale_in_cooldown}"
    assert root.variables["worker_scale_in_cooldown"]["default"] == 300
    worker = root.resources["aws_ecs_task_definition.worker"]["container_definitions"]
    assert re.search(r"stopTimeout\s*=\s*120\b", worker)
    # The ECS agent sets protection with the task role's credentials.
    grant = root.resources["aws_iam_role_policy.task_protection"]
    assert grant["role"] == "${aws_iam_role.task.id}"
    assert grant["policy"] == "${data.aws_iam_policy_document.task_protection.json}"
    assert "aws_iam_policy_document.task_protection" in root.data
    statement = _data_block(root, "aws_iam_policy_document", "task_protection")["statement"][0]
    assert [unquote(a) for a in statement["actions"]] == [
        "ecs:GetTaskProtection",
        "ecs:UpdateTaskProtection",
    ]
    (tasks,) = statement["resources"]
    assert "aws_ecs_cluster.this.arn" in tasks and ":task/" in tasks
    # The longest job the defaults allow is covered with room to spare.
    assert protection_minutes(JobConfig().execute_timeout_seconds) < MAX_MINUTES


def _data_block(module: Module, kind: str, name: str) -> dict[str, Any]:
    for document in module.documents:
        for block in document.get("data", []):
            if name_of(block) == kind:
                for found, body in next(iter(block.values())).items():
                    if unquote(found) == name:
                        result: dict[str, Any] = body
                        return result
    raise KeyError(f"data.{kind}.{name}")


def _mounts(module: Module) -> list[dict[str, str]]:
    found = list(module.locals["scratch_mounts"])
    worker = module.resources["aws_ecs_task_definition.worker"]["container_definitions"]
    for path in re.findall(r'containerPath = "([^"]+)"', worker):
        found.append({"containerPath": json.dumps(path)})
    return found


def test_secret_keys_are_settings_the_bot_reads(modules: dict[Path, Module]):
    """Every key the tasks take from Secrets Manager is a setting (or the agent's key)."""
    aliases = {str(f.validation_alias) for f in Settings.model_fields.values()}
    keys = [unquote(k) for k in modules[TERRAFORM].locals["app_secret_keys"]]
    assert set(keys) - aliases == {"ANTHROPIC_API_KEY"}
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"} <= set(keys)


def test_fargate_entry_point_writes_the_configuration_and_runs_agentbot(
    modules: dict[Path, Module], tmp_path: Path, redis_url: str, database_url: str
):
    """The task definitions' entry point, run here: it writes AGENTBOT_CONFIG and starts."""
    entry = [unquote(part) for part in modules[TERRAFORM].locals["entry_point"]]
    assert entry[:2] == ["tini", "--"]
    tfvars = hcl2.load((TERRAFORM / "terraform.tfvars.example").open())
    heredoc = tfvars["agentbot_config"]
    toml = textwrap.dedent(heredoc.removeprefix('"<<-TOML\n').removesuffix('TOML"'))
    config_path = tmp_path / "agentbot.toml"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AGENTBOT_CONFIG": str(config_path),
        "AGENTBOT_CONFIG_TOML": toml,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        # From Secrets Manager in the task definition; workers post to Slack.
        "SLACK_BOT_TOKEN": "xoxb-test-token",
    }
    # Without tini (not installed here); a burst worker starts, finds nothing, exits.
    run = subprocess.run(
        [*entry[2:], "worker", "--burst"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert config_path.read_text() == toml
    assert load_config_file(config_path).repos[0].name == "acme/shop"
