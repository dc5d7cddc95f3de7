"""The headless Locust runner, for a few seconds against the test server."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # a real `bentoml serve` and Locust

ROOT = Path(__file__).resolve().parents[2]


def _run(server, tmp_path: Path, slo: dict, *extra: str,
         model: str | None = None) -> tuple[int, dict]:
    config = yaml.safe_load((ROOT / "configs" / "loadtest.yaml").read_text())
    config |= {"users": 8, "spawn_rate": 8, "slo": config["slo"] | slo, "batch_sizes": [5, 20]}
    path = tmp_path / "loadtest.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "loadtests.run", "--config", str(path), "--host", server.url,
         "--model", model or server.model_name, "--duration", "5", "--out", str(out), *extra],
        cwd=ROOT, env=os.environ, capture_output=True, text=True, timeout=180,
    )
    assert (out / "report.html").is_file() and (out / "locust_stats.csv").is_file(), \
        result.stdout + result.stderr
    return result.returncode, json.loads((out / "summary.json").read_text())


def test_mixed_load_with_invalid_records_meets_its_objectives(heart_server, tmp_path) -> None:
    code, summary = _run(heart_server, tmp_path, {"min_rps": 1}, "--invalid-share", "0.2")
    assert code == 0, summary
    assert summary["result"]["requests"] > 20 and summary["result"]["failures"] == 0
    assert summary["slo_missed"] == []


def test_missed_objective_fails_the_run(heart_server, tmp_path) -> None:
    code, summary = _run(heart_server, tmp_path, {"min_rps": 1_000_000})
    assert code == 1
    assert any("throughput" in missed for missed in summary["slo_missed"])


# Objectives no run can meet, one at a time, the others loose: each alone fails the run.
LOOSE = {"max_failure_ratio": 0.0, "p95_ms": 1e6, "p99_ms": 1e6, "min_rps": 0}


@pytest.mark.parametrize(("slo", "word"), [
    ({"p95_ms": 0.001}, "p95"),
    ({"p99_ms": 0.001}, "p99"),
])
def test_missed_latency_objective_fails_the_run(heart_server, tmp_path, slo, word) -> None:
    code, summary = _run(heart_server, tmp_path, LOOSE | slo)
    assert summary["result"]["failures"] == 0
    assert code == 1
    assert [missed.split()[0] for missed in summary["slo_missed"]] == [word]


@pytest.mark.parametrize(("max_failure_ratio", "code"), [(0.5, 1), (1.0, 0)])
def test_failure_ratio_objective(heart_server, tmp_path, max_failure_ratio, code) -> None:
    # Iris records sent to the heart model: every request is answered 400, a failure.
    result = _run(heart_server, tmp_path, LOOSE | {"max_failure_ratio": max_failure_ratio},
                  "--user-class", "SingleRecordUser", model="iris-classifier")
    summary = result[1]
    assert summary["result"]["requests"] > 0
    assert summary["result"]["failure_ratio"] == 1.0
    assert result[0] == code
    assert summary["slo_missed"] == (["failure ratio 1.0000 > 0.5"] if code else [])
