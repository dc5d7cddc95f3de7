"""Batch scoring benchmark: rows/s of the local engine and of Spark local[2] on 1M rows,
and the local engine's peak RSS (the whole process tree) on 1M against 10M rows.

    .venv/bin/python -m scoring.benchmark [--rows 1000000] [--big-parts 10]

Trains the heart champion (the Cleveland file in tests/fixtures) into temporary MLflow and
BentoML stores, generates the inputs by resampling Cleveland's rows with noise (numbers
jittered within the spec's range, categories resampled), runs `python -m scoring` as a
subprocess for each measurement and writes reports/scoring-benchmark.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from contract.spec import load_dataset_spec
from training.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent
CLEVELAND = ROOT / "tests" / "fixtures" / "heart" / "processed.cleveland.data"
REPORT = ROOT / "reports" / "scoring-benchmark.json"


def resampled(rows: int, seed: int) -> pd.DataFrame:
    """Cleveland's rows drawn with replacement; numbers jittered by 5% of their spread."""
    spec = load_dataset_spec("heart")
    features = load_dataset(spec, CLEVELAND).features
    rng = np.random.default_rng(seed)
    frame = features.iloc[rng.integers(0, len(features), rows)].reset_index(drop=True)
    for feature in spec.features:
        if feature.type == "numeric":
            column = frame[feature.name]
            noisy = column + rng.normal(0, 0.05 * column.std(), rows)
            frame[feature.name] = noisy.clip(feature.min, feature.max).round(2)
    return frame


def write_parts(directory: Path, rows: int, parts: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(parts):
        resampled(rows, seed=index).to_csv(directory / f"part-{index:05d}.csv", index=False)
    return directory


def measure(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall time and peak RSS of the process and all its children, sampled every 0.1 s."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, errors = process.communicate()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{errors[-3000:]}")
    return {"wall_s": round(time.perf_counter() - start, 1), "peak_rss_mb": round(peak / 2**20)}


def score(engine: str, source: Path, output: Path, env: dict[str, str],
          *extra: str) -> dict[str, float]:
    command = [sys.executable, "-m", "scoring", "--model", "heart-disease-classifier",
               "--input", str(source), "--output", str(output), "--engine", engine, *extra]
    result = measure(command, env)
    summary = json.loads(output.with_name(f"{output.stem}.summary.json").read_text())
    return result | {"rows": summary["rows"], "scoring_s": round(summary["seconds"], 1),
                     "rows_per_s": round(summary["rows"] / summary["seconds"]),
                     "rows_per_s_wall": round(summary["rows"] / result["wall_s"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-parts", type=int, default=10, help="parts of --rows rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scoring-benchmark-") as tmp_name:
        tmp = Path(tmp_name)
        env = os.environ | {"BENTOML_HOME": str(tmp / "bentoml"),
                            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
                            "BENTOML_DO_NOT_TRACK": "true", "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-m", "training", "--dataset", "heart",
                        "--data", str(CLEVELAND)], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        one = write_parts(tmp / "one", args.rows, 1)
        results: dict[str, object] = {
            "machine": {"cores": os.cpu_count(), "load_average_at_start": os.getloadavg()},
            "model": "heart-disease-classifier (the training champion on Cleveland)",
            "local_1x": score("local", one, tmp / "out" / "local1.parquet", env),
        }
        results["spark_local2_1x"] = score("spark", one, tmp / "out" / "spark1.parquet", env,
                                           "--master", "local[2]")
        big = write_parts(tmp / "big", args.rows, args.big_parts)
        results[f"local_{args.big_parts}x"] = score("local", big, tmp / "out" / "local10.parquet",
                                                    env)
        results["load_average_at_end"] = os.getloadavg()
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
