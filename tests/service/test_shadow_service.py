"""The shadow challenger in a real `bentoml serve`: two versions trained into temporary stores
(a logistic-regression champion, a small-forest challenger), served with shadow on and off.

With shadow on the answers are the champion's, /metrics counts the challenger's rows and
agreements as the two pipelines predict them on the same rows, and the capture records both
answers; with shadow off nothing extra is loaded.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import bentoml
import httpx
import pytest
import yaml
from mlflow.tracking import MlflowClient
from rich.console import Console

from contract.spec import load_dataset_spec
from inference.predictor import SklearnPredictor
from serving.model_store import example_record, find_served_model
from serving.shadow import challenger_tag
from tests.conftest import small_config
from tests.servers import serve_dataset
from tests.service.test_prediction_store import wait_for
from tests.service.test_service import metric
from training import lifecycle, registry
from training.data import load_dataset
from training.train import run_training

# Starts real servers through fixtures looked up at run time: slow, whatever the hook sees.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ROWS = 60


def _only(config, name: str, **params):
    """`config` with one binary candidate, its parameters changed."""
    [candidate] = [c for c in config.candidates["binary"] if c.name == name]
    candidate = candidate.model_copy(update={"params": candidate.params | params,
                                             "search": {}})
    return config.model_copy(update={"candidates": config.candidates | {"binary": [candidate]}})


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory) -> tuple[Path, str, str]:
    """(spec file, champion twin, challenger twin) of a breast-cancer copy of its own name."""
    tmp = tmp_path_factory.mktemp("shadow-train")
    raw = yaml.safe_load((ROOT / "configs" / "datasets" / "breast_cancer.yaml").read_text())
    raw["model_name"] = f"shadow-{uuid.uuid4().hex[:8]}"
    spec_file = tmp / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(raw))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
        dataset = load_dataset(load_dataset_spec(spec_file))
        quiet = Console(quiet=True)
        champion = run_training(dataset, _only(small_config(), "logistic_regression"),
                                console=quiet)
        # A deliberately weak challenger (3 stumps), so the two disagree on some rows.
        weak = _only(small_config(), "random_forest", n_estimators=3, max_depth=1)
        challenger = run_training(dataset, weak, console=quiet, alias="challenger")
        client = MlflowClient(registry.tracking_uri(), registry.tracking_uri())
        twin = client.get_model_version(dataset.spec.model_name,
                                         challenger.challenger)
        yield spec_file, champion.registration.bento_tag, twin.tags["bentoml_tag"]


def _labels(server, rows: list[dict], tag: str) -> list[str]:
    spec = server.dataset.spec
    pipeline = bentoml.sklearn.load_model(bentoml.models.get(tag))
    out = SklearnPredictor(spec, pipeline).predict(rows)
    return [str(pipeline.classes_[i]) for i in out.argmax(axis=1)]


def _wait(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _captured(server) -> list[dict]:
    lines = []
    for path in server.capture_dir.glob("capture-*.jsonl*"):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines


def test_shadow_scores_the_challenger_off_the_answers(two_versions, tmp_path) -> None:
    spec_file, champion_tag, challenger_tag = two_versions
    assert bentoml.models.get(challenger_tag).info.labels["mlflow_alias"] == "challenger"
    assert str(bentoml.models.get(f"{champion_tag.split(':')[0]}:latest").tag) == champion_tag
    serve = contextlib.contextmanager(serve_dataset)
    with serve(tmp_path / "on", str(spec_file), config={"shadow": {"enabled": True}}) as on:
        rows = [example_record(on.dataset.spec, r)
                for r in on.dataset.features.iloc[:ROWS].to_dict("records")]
        champion, challenger = _labels(on, rows, champion_tag), _labels(on, rows, challenger_tag)
        agreed = sum(a == b for a, b in zip(champion, challenger, strict=True))
        assert 0 < agreed < ROWS, "the test needs models that disagree on some rows"
        single = [httpx.post(f"{on.url}/predict", json=r, timeout=30,
                             headers={"X-Request-ID": f"one-{i}"}).json()
                  for i, r in enumerate(rows[:40])]
        batch = httpx.post(f"{on.url}/predict_batch", json={"records": rows[40:]}, timeout=30,
                           headers={"X-Request-ID": "many"})
        answers = single + batch.json()["predictions"]
        version = champion_tag.split(":")[1]
        assert all(a["model_version"] == version and "shadow" not in a for a in answers)
        assert [a["prediction"] for a in answers] == champion

        def scored() -> str | None:
            text = httpx.get(f"{on.url}/metrics").text
            done = metric(text, "tabular_shadow_rows_total", absent_ok=True) >= ROWS
            return text if done else None

        text = _wait(scored, "the challenger to score every row")
        assert metric(text, "tabular_shadow_rows_total") == ROWS
        assert metric(text, "tabular_shadow_agreements_total") == agreed
        assert metric(text, "tabular_shadow_dropped_rows_total", absent_ok=True) == 0
        assert metric(text, "tabular_shadow_call_seconds_count") >= 1
        assert metric(text, "tabular_shadow_cpu_seconds_total") > 0
        rates = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                 if line.startswith("tabular_shadow_agreement_rate{")]
        assert rates and all(0 < r < 1 for r in rates)
        # Predictions of the champion were counted once: the challenger's are not among them.
        assert metric(text, "tabular_predictions_total") == ROWS

        def captured() -> list[dict] | None:
            lines = [line for line in _captured(on) if "shadow" in line]
            return lines if len(lines) >= ROWS else None

        lines = _wait(captured, "both answers in the capture")
        expected = {json.dumps(r, sort_keys=True): (a, b)
                    for r, a, b in zip(rows, champion, challenger, strict=True)}
        assert len(lines) == ROWS
        challenger_version = challenger_tag.split(":")[1]
        for line in lines:
            pair = expected[json.dumps(line["features"], sort_keys=True)]
            assert (line["prediction"], line["shadow"]["prediction"]) == pair
            assert line["shadow"]["model_version"] == challenger_version
            assert line["model_version"] == version
        # The prediction store's record of each answer carries the challenger's too.
        ids = [f"one-{i}" for i in range(40)] + [f"many.{i}" for i in range(ROWS - 40)]
        for request_id, a, b in zip(ids, champion, challenger, strict=True):
            stored = wait_for(on.url, f"/predictions/{request_id}").json()["answer"]
            assert (stored["prediction"], stored["shadow"]["prediction"]) == (a, b)
            assert stored["shadow"]["model_version"] == challenger_version

    with serve(tmp_path / "off", str(spec_file)) as off:
        plain = [httpx.post(f"{off.url}/predict", json=r, timeout=30).json() for r in rows[:40]]
        def same(a: dict) -> dict:  # what does not depend on the request's id and time
            return {k: v for k, v in a.items() if k not in ("request_id", "timestamp")}

        assert [same(a) for a in plain] == [same(a) for a in single]  # probabilities included
        text = httpx.get(f"{off.url}/metrics").text
        assert not [line for line in text.splitlines() if line.startswith("tabular_shadow")]
        assert metric(text, "tabular_predictions_total") == 40
        stored = wait_for(off.url, f"/predictions/{plain[0]['request_id']}").json()["answer"]
        assert "shadow" not in stored


def test_the_challenger_label_follows_the_alias(two_versions) -> None:
    """Exactly the MLflow challenger's twin is labelled challenger: the one the service picks."""
    spec_file, champion_tag, first = two_versions
    spec = load_dataset_spec(spec_file)
    settings = SimpleNamespace(shadow=SimpleNamespace(model_tag=None))
    assert challenger_tag(settings, find_served_model(champion_tag)) == first
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{spec_file.parent / 'mlflow.db'}")
        client = MlflowClient(registry.tracking_uri(), registry.tracking_uri())
        newer = run_training(load_dataset(spec), _only(small_config(), "logistic_regression"),
                             console=Console(quiet=True), alias="challenger")
        second = client.get_model_version(spec.model_name, newer.challenger).tags["bentoml_tag"]
        assert bentoml.models.get(first).info.labels["mlflow_alias"] == "none"
        assert bentoml.models.get(second).info.labels["mlflow_alias"] == "challenger"
        assert challenger_tag(settings, find_served_model(champion_tag)) == second
        lifecycle.promote(client, spec.model_name, newer.challenger)
    # Promoted: champion now, and no twin is left for the shadow to pick.
    assert bentoml.models.get(second).info.labels["mlflow_alias"] == "champion"
    assert challenger_tag(settings, find_served_model(champion_tag)) is None
