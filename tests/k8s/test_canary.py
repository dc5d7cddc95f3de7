"""The canary overlay: production plus the challenger's Deployment behind an ingress-nginx
canary Ingress by weight. Rendered and validated as tests/k8s/test_manifests.py does the
other overlays, and checked so the two tracks never select each other's pods."""

from __future__ import annotations

import pytest

from tests.k8s.test_manifests import K8S_VERSION, render

CANARY = "tabular-serving-canary"


def named(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return render("canary")


def test_every_object_validates_strictly(objects) -> None:
    import kubernetes_validate

    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    assert all(o["metadata"]["namespace"] == "tabular-prod" for o in objects)


def test_production_is_unchanged_and_the_challenger_runs_its_own_image(objects) -> None:
    prod = render("prod")
    canary_free = [o for o in objects
                   if o["metadata"]["labels"].get("app.kubernetes.io/track") != "canary"]
    assert sorted(canary_free, key=str) == sorted(prod, key=str)
    deployments = named(objects, "Deployment")
    assert set(deployments) == {"tabular-serving", CANARY}
    image = {n: d["spec"]["template"]["spec"]["containers"][0]["image"]
             for n, d in deployments.items()}
    assert image[CANARY] != image["tabular-serving"]
    assert image[CANARY].startswith("registry.example.com/")
    assert deployments[CANARY]["spec"]["replicas"] == 1
    # No autoscaler or disruption budget of its own: one pod, drained like any other.
    assert set(named(objects, "HorizontalPodAutoscaler")) == {"tabular-serving"}
    assert set(named(objects, "PodDisruptionBudget")) == {"tabular-serving"}


def test_the_two_tracks_never_select_each_others_pods(objects) -> None:
    deployments = named(objects, "Deployment")
    pods = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}

    def selects(selector: dict) -> set[str]:
        return {n for n, labels in pods.items() if selector.items() <= labels.items()}

    for name in ("tabular-serving", CANARY):
        service = named(objects, "Service")[name]
        assert selects(service["spec"]["selector"]) == {name}
        policy = named(objects, "NetworkPolicy")[name]
        assert selects(policy["spec"]["podSelector"]["matchLabels"]) == {name}
        spread = deployments[name]["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert selects(spread[0]["labelSelector"]["matchLabels"]) == {name}
        # The same pod security as production (the base's, unchanged).
        pod = deployments[name]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert pods[CANARY]["app.kubernetes.io/track"] == "canary"


def test_canary_ingress_sends_ten_percent_to_the_challenger(objects) -> None:
    ingresses = named(objects, "Ingress")
    main, canary = ingresses["tabular-serving"], ingresses[CANARY]
    annotations = canary["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/canary-weight"] == "10"
    assert "nginx.ingress.kubernetes.io/canary" not in main["metadata"]["annotations"]
    # ingress-nginx pairs a canary with the main Ingress of the same host and path.
    rule, main_rule = canary["spec"]["rules"][0], main["spec"]["rules"][0]
    assert rule["host"] == main_rule["host"]
    assert rule["http"]["paths"][0]["path"] == main_rule["http"]["paths"][0]["path"]
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == CANARY
    assert main_rule["http"]["paths"][0]["backend"]["service"]["name"] == "tabular-serving"
    assert canary["spec"]["ingressClassName"] == main["spec"]["ingressClassName"]
