"""infra/k8s: valid against the Kubernetes and KEDA schemas, and consistent with itself."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from rq import Queue

from bot.cli import build_parser
from bot.settings import load_config_file
from jobs.queues import ALL_QUEUES
from tests.infra import keda

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "infra" / "k8s"
# The oldest Kubernetes release still commonly run (EKS extended support) and the newest.
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
WORKLOADS = ("Deployment", "StatefulSet")
Object = dict[str, Any]


def load() -> list[tuple[str, Object]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((path.name, document))
    return found


@pytest.fixture(scope="module")
def objects() -> list[Object]:
    return [o for _, o in load()]


def of_kind(objects: list[Object], *kinds: str) -> list[Object]:
    return [o for o in objects if o["kind"] in kinds]


def named(objects: list[Object], kind: str, name: str) -> Object:
    return next(o for o in of_kind(objects, kind) if o["metadata"]["name"] == name)


def pod_templates(objects: list[Object]) -> Iterator[tuple[Object, Object]]:
    for workload in of_kind(objects, *WORKLOADS):
        yield workload, workload["spec"]["template"]


def containers(pod: Object) -> list[Object]:
    spec = pod["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def selects(selector: Object, labels: Object) -> bool:
    wanted = selector.get("matchLabels", selector)
    return all(labels.get(k) == v for k, v in wanted.items())


@pytest.mark.parametrize("version", VERSIONS)
def test_manifests_match_the_kubernetes_schemas(version: str):
    """Every built-in object passes strict validation (unknown fields are errors)."""
    checked = 0
    for filename, document in load():
        if document["apiVersion"].startswith("keda.sh/"):
            continue
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{filename} {document['kind']}: {exc.message} at {list(exc.path)}")
        checked += 1
    assert checked >= 20
    wrong = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}
    wrong["spec"] = {"replicas": "two", "selector": {}, "template": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, version, strict=True)


def test_keda_scaler_matches_keda_schema_and_rq_queues(objects: list[Object], redis_client: Any):
    """The ScaledObject is valid for KEDA and watches the lists RQ really pushes jobs to."""
    scaled = of_kind(objects, "ScaledObject")
    assert keda.validate(scaled) == [""]
    broken = {**scaled[0], "spec": {**scaled[0]["spec"], "maxReplicaCount": "eight"}}
    assert keda.validate([broken]) != [""]

    spec = scaled[0]["spec"]
    target = named(objects, "Deployment", spec["scaleTargetRef"]["name"])
    assert "replicas" not in target["spec"], "KEDA owns the worker count"
    assert target["spec"]["template"]["spec"]["containers"][0]["args"] == ["worker"]
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    triggers = spec["triggers"]
    assert {t["type"] for t in triggers} == {"redis"}
    keys = {Queue(name, connection=redis_client).key for name in ALL_QUEUES}
    assert {t["metadata"]["listName"] for t in triggers} == keys
    # RQ keeps waiting jobs in a Redis list under that key (what the list scaler reads).
    Queue("plan", connection=redis_client).enqueue("builtins.print", "x")
    assert redis_client.type("rq:queue:plan") == b"list"
    assert redis_client.llen("rq:queue:plan") == 1
    redis_service = named(objects, "Service", "redis")
    for trigger in triggers:
        host, port = trigger["metadata"]["address"].rsplit(":", 1)
        assert host.split(".")[:2] == ["redis", redis_service["metadata"]["namespace"]]
        assert int(port) == redis_service["spec"]["ports"][0]["port"]


def test_kustomization_lists_every_manifest():
    """`kubectl apply -k` applies every file here, and no missing one."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert [i["name"] for i in kustomization["images"]] == ["agentbot"]


def test_selectors_and_references_resolve(objects: list[Object]):
    """Services, budgets and policies select real pods; config and secrets exist."""
    pods = [template["metadata"]["labels"] for _, template in pod_templates(objects)]
    for workload, template in pod_templates(objects):
        assert selects(workload["spec"]["selector"], template["metadata"]["labels"])
    for kind in ("Service", "PodDisruptionBudget"):
        for item in of_kind(objects, kind):
            assert any(selects(item["spec"]["selector"], p) for p in pods), item["metadata"]
    for policy in of_kind(objects, "NetworkPolicy"):
        selector = policy["spec"]["podSelector"]
        assert not selector or any(selects(selector, p) for p in pods), policy["metadata"]

    config_maps = {o["metadata"]["name"]: o["data"] for o in of_kind(objects, "ConfigMap")}
    secrets = {o["metadata"]["name"]: o["stringData"] for o in of_kind(objects, "Secret")}
    for _, template in pod_templates(objects):
        for volume in template["spec"].get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
        for container in containers(template):
            available: set[str] = set()
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    available |= set(config_maps[source["configMapRef"]["name"]])
                if "secretRef" in source:
                    available |= set(secrets[source["secretRef"]["name"]])
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]]
                for used in re.findall(r"\$\((\w+)\)", variable.get("value", "")):
                    assert used in available, f"$({used}) is not defined for {container['name']}"
                available.add(variable["name"])


def test_agentbot_pods_are_probed_limited_and_unprivileged(objects: list[Object]):
    """Probes on /healthz and /readyz, requests and limits, non-root, one scheduler."""
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for workload, template in pod_templates(objects):
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        for container in containers(template):
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), container["name"]
            assert {"cpu", "memory"} <= set(resources["limits"]), container["name"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            if container["image"] == "agentbot":
                assert container["args"][0] in action.choices

    bot = named(objects, "Deployment", "agentbot-bot")["spec"]["template"]["spec"]
    serve = bot["containers"][0]
    assert serve["args"] == ["serve"]
    assert serve["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert serve["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert [c["args"] for c in bot["initContainers"]] == [["migrate"]]

    cron = named(objects, "Deployment", "agentbot-cron")["spec"]
    assert cron["replicas"] == 1 and cron["strategy"]["type"] == "Recreate"
    assert named(objects, "Deployment", "agentbot-bot")["spec"]["replicas"] >= 2

    redis = named(objects, "StatefulSet", "redis")["spec"]["template"]["spec"]["containers"][0]
    assert redis["args"][redis["args"].index("--appendonly") + 1] == "yes"
    secret = of_kind(objects, "Secret")[0]["stringData"]
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "POSTGRES_PASSWORD"} <= set(secret)


def test_network_policies_deny_by_default_and_open_only_what_is_used(objects: list[Object]):
    """Default deny; Redis only from Agentbot and KEDA; no route to instance metadata."""
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(objects, "NetworkPolicy")}
    deny = policies["default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    sources = policies["redis-ingress"]["ingress"][0]["from"]
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "agentbot"}}} in sources
    assert any(
        s.get("namespaceSelector", {}).get("matchLabels") == {"kubernetes.io/metadata.name": "keda"}
        for s in sources
    )
    outside = policies["agentbot-egress"]["egress"][-1]["to"][0]["ipBlock"]
    assert "169.254.169.254/32" in outside["except"]


def test_configuration_in_the_config_map_loads(objects: list[Object], tmp_path: Path):
    """The agentbot.toml the pods mount is a valid configuration."""
    toml = named(objects, "ConfigMap", "agentbot-toml")["data"]["agentbot.toml"]
    path = tmp_path / "agentbot.toml"
    path.write_text(toml)
    config = load_config_file(path)
    assert config.agent.workspace_dir == "/var/lib/agentbot/workspaces"
    worker = named(objects, "Deployment", "agentbot-worker")["spec"]["template"]["spec"]
    mounts = {m["mountPath"] for m in worker["containers"][0]["volumeMounts"]}
    assert "/var/lib/agentbot" in mounts


def test_redis_and_postgres_require_credentials_and_the_worker_may_sandbox(
    objects: list[Object],
):
    """Redis needs the secret's password everywhere; only the worker may make namespaces."""
    redis = named(objects, "StatefulSet", "redis")["spec"]["template"]["spec"]["containers"][0]
    assert redis["args"][redis["args"].index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert "REDIS_PASSWORD" in of_kind(objects, "Secret")[0]["stringData"]
    for _workload, template in pod_templates(objects):
        for container in containers(template):
            env = {v["name"]: v.get("value", "") for v in container.get("env", [])}
            if "REDIS_URL" in env:
                assert env["REDIS_URL"].startswith("redis://:$(REDIS_PASSWORD)@"), container
            if "DATABASE_URL" in env:
                assert ":$(POSTGRES_PASSWORD)@" in env["DATABASE_URL"], container
    auth = named(objects, "TriggerAuthentication", "agentbot-redis")["spec"]
    assert auth["secretTargetRef"][0]["key"] == "REDIS_PASSWORD"
    worker = named(objects, "Deployment", "agentbot-worker")["spec"]["template"]["spec"]
    assert worker["hostUsers"] is False
    assert worker["securityContext"]["seccompProfile"]["type"] == "Unconfined"
    assert worker["containers"][0]["securityContext"]["procMount"] == "Unmasked"
    bot = named(objects, "Deployment", "agentbot-bot")["spec"]["template"]["spec"]
    assert bot["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
