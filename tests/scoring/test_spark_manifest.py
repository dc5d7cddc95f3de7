"""k8s/spark/scoring-sparkapplication.yaml: the Kubernetes objects validate strictly
(kubernetes-validate, as tests/k8s does), and the SparkApplication, a CRD without a schema
there, has the fields the operator requires, runs as non-root, and passes arguments the
CLI accepts."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import yaml

from scoring.cli import parse_args

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "k8s" / "spark" / "scoring-sparkapplication.yaml"
K8S_VERSION = "1.30"


def objects() -> dict[str, dict]:
    return {o["kind"]: o for o in yaml.safe_load_all(MANIFEST.read_text()) if o}


def test_kubernetes_objects_validate_strictly() -> None:
    found = objects()
    assert {"ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim",
            "SparkApplication"} <= set(found)
    for kind, obj in found.items():
        if kind != "SparkApplication":
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        assert obj["metadata"]["namespace"] == "tabular-batch"


def test_spark_application_has_what_the_operator_requires() -> None:
    app = objects()["SparkApplication"]
    assert app["apiVersion"] == "sparkoperator.k8s.io/v1beta2"
    spec = app["spec"]
    # required by the operator's CRD (v1beta2): type, sparkVersion, mode or defaults, driver,
    # executor; a Python application needs its main file
    assert spec["type"] == "Python" and spec["mode"] == "cluster"
    assert spec["sparkVersion"].startswith("4.")
    assert spec["mainApplicationFile"] == "local:///app/scoring/__main__.py"
    assert (ROOT / "scoring" / "__main__.py").is_file()
    assert spec["driver"]["serviceAccount"] == objects()["ServiceAccount"]["metadata"]["name"]
    binding = objects()["RoleBinding"]
    assert binding["subjects"][0]["name"] == spec["driver"]["serviceAccount"]
    claims = {v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"]}
    assert objects()["PersistentVolumeClaim"]["metadata"]["name"] in claims
    volumes = {v["name"] for v in spec["volumes"]}
    for role in ("driver", "executor"):
        part = spec[role]
        assert {m["name"] for m in part["volumeMounts"]} <= volumes
        assert part["securityContext"]["runAsNonRoot"] is True
        assert part["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert isinstance(part["cores"], int) and part["memory"].endswith("g")
    # the data volume is mounted at the same path everywhere: Spark resolves paths per node
    mount = lambda role: {m["name"]: m["mountPath"] for m in spec[role]["volumeMounts"]}  # noqa: E731
    assert mount("driver")["data"] == mount("executor")["data"]
    assert "BENTOML_HOME" in {e["name"] for e in spec["driver"]["env"]}


def test_arguments_are_the_clis() -> None:
    args = parse_args(objects()["SparkApplication"]["spec"]["arguments"])
    assert args.engine == "spark" and args.master is None  # spark-submit sets the master
    assert str(args.input).startswith("/data/") and str(args.output).startswith("/data/")
