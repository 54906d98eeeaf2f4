"""Scale-out files, checked without a cluster or a Docker engine.

Kubernetes manifests are validated against the Kubernetes JSON schemas that `kubernetes-validate` ships
(offline, strict: unknown fields fail), then checked for what the schemas cannot know: probes on
/health on the container's port, the Service and the autoscaler pointing at the Deployment, every
setting a real one. The nginx compose variant and its config, and the Grafana dashboard's queries, are
checked against the compose files and the service's real /metrics.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from env_server.service.settings import Settings
from tests.test_docker import compose, interpolate

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
NGINX = ROOT / "deploy" / "nginx" / "nginx.conf"
DASHBOARD = ROOT / "deploy" / "grafana" / "sched-env-dashboard.json"


def manifests() -> dict[str, dict[str, Any]]:
    """Kind → the one resource of that kind in deploy/k8s (kustomization.yaml aside)."""
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            for doc in yaml.safe_load_all(path.read_text()):
                assert doc["kind"] not in out, f"two {doc['kind']} resources"
                out[doc["kind"]] = doc
    return out


def rendered() -> dict[str, dict[str, Any]]:
    """Kind → resource, as `kubectl kustomize deploy/k8s` renders them (what `kubectl apply -k` sends)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl missing in CI (.ci/run installs Debian's kubernetes-client)")
        pytest.skip("kubectl not installed: the kustomization is not rendered")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    )
    docs = {doc["kind"]: doc for doc in yaml.safe_load_all(out.stdout) if doc}
    assert len(docs) == len(list(yaml.safe_load_all(out.stdout)))  # one resource per kind
    return docs


# --- Kubernetes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.29.0", "latest"])
def test_manifests_validate_against_the_kubernetes_schemas(version: str) -> None:
    kv = pytest.importorskip("kubernetes_validate")
    from kubernetes_validate import utils

    target = utils.latest_version() if version == "latest" else version
    docs = rendered()
    assert set(docs) == {
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    for doc in docs.values():
        kv.validate(doc, target, strict=True)
    broken = json.loads(json.dumps(docs["Deployment"]))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/health"
    with pytest.raises(kv.ValidationError):  # the validator does catch a typo
        kv.validate(broken, target, strict=True)


def test_kustomize_renders_the_image_compose_builds() -> None:
    """The rendered Deployment runs the image `docker compose build` makes (kustomize's `images:` applied), and
    the rendered resources are the files' own otherwise."""
    docs = rendered()
    env_image = interpolate(compose()["services"]["env"]["image"])
    assert docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] == env_image
    files = manifests()
    assert set(docs) == set(files)
    assert docs["ConfigMap"]["data"] == files["ConfigMap"]["data"]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    image = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.split(":")[0] == kustomization["images"][0]["name"]


def test_deployment_probes_resources_and_settings() -> None:
    docs = manifests()
    deployment, config = docs["Deployment"], docs["ConfigMap"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (port,) = container["ports"]
    assert port["containerPort"] == int(config["data"]["SCHED_PORT"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/health" and get["port"] in (port["name"], port["containerPort"])
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    assert container["args"] == ["sched-env", "serve"]
    assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    assert pod["spec"]["securityContext"]["runAsUser"] == 10001  # the image's user (Dockerfile.env)
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    # Every key is a real setting, each value parses, and every setting is given (replicas must agree).
    fields = {f"SCHED_{k.upper()}" for k in Settings.model_fields} - {"SCHED_TRAIN_FILE", "SCHED_TEST_FILE"}
    assert set(config["data"]) == fields - {"SCHED_API_KEYS"}  # keys come from a Secret:
    (keys,) = container["env"]
    assert keys["name"] == "SCHED_API_KEYS" and keys["valueFrom"]["secretKeyRef"]["optional"] is True
    values = {k.removeprefix("SCHED_").lower(): v for k, v in config["data"].items()}
    assert Settings(**values).workers == 1  # one worker per pod: the autoscaler scales pods


def test_service_autoscaler_and_budget_point_at_the_deployment() -> None:
    docs = manifests()
    deployment, service, hpa, pdb = (
        docs[k] for k in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget")
    )
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (svc_port,) = service["spec"]["ports"]
    assert (
        svc_port["targetPort"] == deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"]
    )
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


# --- compose with nginx -------------------------------------------------------------------------------------


def test_load_balanced_compose_variant() -> None:
    base, over = compose()["services"], compose("docker-compose.lb.yml")["services"]
    assert over["env"]["ports"] == [] and int(interpolate(over["env"]["deploy"]["replicas"])) >= 2
    lb = over["lb"]
    assert interpolate(lb["image"]).startswith("nginx:")  # LB_IMAGE: any nginx (docker/local-base.sh's)
    assert lb["depends_on"] == {"env": {"condition": "service_healthy"}}
    host_conf, _, mount = lb["volumes"][0].partition(":")
    assert (ROOT / host_conf).resolve() == NGINX and mount.startswith("/etc/nginx/nginx.conf")
    listen = int(re.search(r"listen\s+(\d+);", NGINX.read_text()).group(1))  # type: ignore[union-attr]
    assert interpolate(lb["ports"][0]).endswith(f":{listen}")
    assert f"http://127.0.0.1:{listen}/health" in lb["healthcheck"]["test"]
    cmd = [interpolate(c) for c in over["trainer"]["command"]]
    assert cmd[cmd.index("--env_url") + 1] == f"http://lb:{listen}"
    assert cmd[:4] == [interpolate(c) for c in base["trainer"]["command"]][:4]
    assert over["trainer"]["depends_on"] == {"lb": {"condition": "service_healthy"}}


def test_nginx_config_balances_the_env_service() -> None:
    conf = NGINX.read_text()
    env_port = int(interpolate(compose()["services"]["env"]["environment"]["SCHED_PORT"]))
    # the name in a variable: resolved at run time (every replica, re-resolved), on any nginx version
    target = re.search(r"set \$(\w+) env:(\d+);", conf)
    assert target is not None and int(target.group(2)) == env_port
    assert f"proxy_pass http://${target.group(1)};" in conf
    assert not re.search(r"^\s*upstream \w+ \{", conf, re.M)  # an upstream block resolves once, at start
    assert "resolver 127.0.0.11" in conf  # Docker's DNS
    size = re.search(r"client_max_body_size (\d+)m;", conf)
    assert size is not None and int(size.group(1)) * 1024 * 1024 > Settings().max_body_bytes
    assert "proxy_set_header X-Request-ID" in conf and "non_idempotent" in conf
    assert conf.count("{") == conf.count("}")


# --- Grafana ------------------------------------------------------------------------------------------------


def test_dashboard_queries_only_metrics_the_service_exports(client: TestClient) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    client.post("/v1/score", json={"items": [{"problem_id": "test-000000", "completion": "x"}]})
    exported = {m.group(1) for m in re.finditer(r"^# TYPE (\w+) (\w+)", client.get("/metrics").text, re.M)}
    series = set()
    for name in exported:
        series |= {name, f"{name}_total", f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 8
    used = {m for e in exprs for m in re.findall(r"\b(sched_\w+)", e)}
    assert used and used <= series, used - series
    assert {"sched_http_requests_total", "sched_scored_items_total", "sched_score_batch_size_bucket"} <= used
