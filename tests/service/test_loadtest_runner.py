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


def _run(server, tmp_path: Path, slo: dict, *extra: str) -> tuple[int, dict]:
    config = yaml.safe_load((ROOT / "configs" / "loadtest.yaml").read_text())
    config |= {"users": 8, "spawn_rate": 8, "slo": config["slo"] | slo, "batch_sizes": [5, 20]}
    path = tmp_path / "loadtest.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "loadtests.run", "--config", str(path), "--host", server.url,
         "--model", server.model_name, "--duration", "5", "--out", str(out), *extra],
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
