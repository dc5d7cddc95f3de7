"""What the shadow challenger costs the champion: closed-loop /predict throughput and p99 with
`shadow.enabled` off and on, runs alternating (off, on, on, off: ABBA) so that drift in the
machine's load falls on both. Writes reports/shadow-cost.json.

Trains into temporary stores, as loadtests/benchmark.py does: a champion with the configured
candidate (configs/benchmark.yaml) and, as the challenger, the same candidate trained with
another seed (a retrained model: the usual challenger, as costly as the champion).

    python -m loadtests.shadow_cost [--seconds 20] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console

from loadtests.benchmark import DEFAULT_CONFIG, BenchmarkConfig, bentoml_server, measure
from loadtests.server import ROOT

CONSOLE = Console()
REPORT = ROOT / "reports" / "shadow-cost.json"
CHALLENGER_SEED = 7


def train_pair(config: BenchmarkConfig, home: Path) -> tuple[str, str]:
    """(champion tag, challenger tag): the configured candidate only, in temporary stores."""
    os.environ["BENTOML_HOME"] = str(home / "bentoml")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
    from contract.spec import load_dataset_spec
    from training.config import load_training_config
    from training.data import load_dataset
    from training.train import run_training

    training = load_training_config()
    spec = load_dataset_spec(config.dataset)
    candidates = [c for c in training.candidates[spec.task] if c.name == config.candidate]
    training = training.model_copy(update={"candidates": training.candidates | {
        spec.task: candidates}})
    dataset, quiet = load_dataset(spec), Console(quiet=True)
    champion = run_training(dataset, training, console=quiet)
    challenger = run_training(dataset, training.model_copy(update={"seed": CHALLENGER_SEED}),
                              console=quiet, alias="challenger")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"], os.environ["MLFLOW_TRACKING_URI"])
    twin = client.get_model_version(spec.model_name, challenger.challenger or "")
    return champion.registration.bento_tag or "", twin.tags["bentoml_tag"]


def serving_config(home: Path, name: str, shadow: bool) -> Path:
    """configs/serving.yaml with this run's capture and store, and shadow on or off."""
    config = yaml.safe_load((ROOT / "configs" / "serving.yaml").read_text())
    config["monitoring"]["directory"] = str(home / name / "capture")
    config["monitoring"]["store"]["url"] = f"sqlite:///{home / name / 'predictions.db'}"
    config["shadow"]["enabled"] = shadow
    path = home / name / "serving.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def shadow_metrics(url: str) -> dict[str, float]:
    """The challenger's totals from /metrics, summed over the workers."""
    names = ("rows_total", "agreements_total", "dropped_rows_total", "errors_total",
             "call_seconds_count", "call_seconds_sum", "lag_seconds_sum", "lag_seconds_count",
             "cpu_seconds_total")
    totals = dict.fromkeys(names, 0.0)
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        for name in names:
            if line.startswith(f"tabular_shadow_{name}{{"):
                totals[name] += float(line.rsplit(" ", 1)[1])
    return totals


def run(config: BenchmarkConfig, home: Path, tag: str, records: list[dict], shadow: bool,
        number: int) -> dict[str, Any]:
    name = f"{'on' if shadow else 'off'}-{number}"
    env = {"BENTOML_HOME": os.environ["BENTOML_HOME"], "MODEL_TAG": tag,
           "BENTOML_DO_NOT_TRACK": "true",
           "SERVING_CONFIG": str(serving_config(home, name, shadow))}
    with bentoml_server(env, home / f"{name}.log") as (url, pid):
        row = measure(f"shadow {name}", url, pid, records, config.users, config.seconds,
                      config.warmup_seconds, batching=True)
        # p99 of the answered requests too: under overload the 503s (shed at once) pull the
        # all-answers p99 down. The load average says how busy the shared host was.
        out: dict[str, Any] = {"run": name, "shadow": shadow, **row.result.summary(),
                               "p99_200_ms": round(row.result.percentile(0.99, 200), 1),
                               "server_cpu": row.server_cpu, "batch_size": row.batch_size,
                               "load_average_1m": os.getloadavg()[0]}
        if shadow:
            time.sleep(2)  # the challenger finishes what it has queued
            totals = shadow_metrics(url)
            rows = totals["rows_total"]
            out["challenger"] = totals | {
                "agreement_rate": totals["agreements_total"] / rows if rows else None,
                "rows_per_call": rows / totals["call_seconds_count"]
                if totals["call_seconds_count"] else None,
                "mean_lag_ms": 1000 * totals["lag_seconds_sum"] / totals["lag_seconds_count"]
                if totals["lag_seconds_count"] else None}
    CONSOLE.print(f"  {name}: {out['requests_per_s']:.0f} req/s, p99 {out['p99_ms']:.0f} ms")
    return out


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(shadow: bool, key: str) -> float:
        return statistics.fmean(r[key] for r in runs if r["shadow"] is shadow)

    off, on = mean(False, "requests_per_s"), mean(True, "requests_per_s")
    return {"off_requests_per_s": round(off, 1), "on_requests_per_s": round(on, 1),
            "throughput_cost": round(1 - on / off, 4),
            "off_p99_ms": round(mean(False, "p99_ms"), 1),
            "on_p99_ms": round(mean(True, "p99_ms"), 1),
            "off_p99_200_ms": round(mean(False, "p99_200_ms"), 1),
            "on_p99_200_ms": round(mean(True, "p99_200_ms"), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--seconds", type=float, help="override the per-measurement seconds")
    parser.add_argument("--runs", type=int, default=2, help="runs of each, alternating")
    parser.add_argument("--out", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    raw = yaml.safe_load(args.config.read_text())
    if args.seconds:
        raw["seconds"] = args.seconds
    config = BenchmarkConfig.model_validate(raw)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shadow-cost-") as tmp:
        home = Path(tmp)
        CONSOLE.print(f"[bold]training[/] {config.dataset} ({config.candidate}) x 2 into {home}")
        champion, challenger = train_pair(config, home)
        from loadtests.payloads import reference_records

        _, records = reference_records(champion)
        # ABBA (off, on, on, off, ...): a steady drift in the host's load falls on both alike.
        order = [(n, s) for n in range(1, args.runs + 1)
                 for s in ((False, True) if n % 2 else (True, False))]
        runs = [run(config, home, champion, records, shadow, number) for number, shadow in order]
    report = {"dataset": config.dataset, "candidate": config.candidate, "champion": champion,
              "challenger": challenger, "users": config.users, "seconds": config.seconds,
              "cores": os.cpu_count(), "summary": summarise(runs), "runs": runs,
              "minutes": round((time.perf_counter() - started) / 60, 1)}
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    CONSOLE.print(report["summary"])
    CONSOLE.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
