"""Headless load test: start the service (or target --host), run Locust for a bounded time,
write its CSV and HTML reports, and exit non-zero when a service-level objective is missed.

    python -m loadtests.run [--model NAME] [--host URL] [--users N] [--duration S] ...
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from loadtests.loadgen import check_loopback
from loadtests.payloads import write_payloads
from loadtests.server import ROOT, bentoml_serve
from serving.config import load_serving_config, model_tag

DEFAULT_CONFIG = ROOT / "configs" / "loadtest.yaml"


class SLO(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_failure_ratio: float = Field(default=0.0, ge=0, le=1)
    p95_ms: float = Field(default=1000, gt=0)
    p99_ms: float = Field(default=2000, gt=0)
    min_rps: float = Field(default=0, ge=0)


class LoadTestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: int = Field(default=64, ge=1)
    spawn_rate: float = Field(default=64, gt=0)
    duration_s: int = Field(default=60, ge=1, le=3600)
    user_class: str = "MixedUser"
    invalid_share: float = Field(default=0.0, ge=0, le=1)
    batch_sizes: list[int] = Field(default=[10, 100, 500], min_length=1)
    slo: SLO = SLO()


def aggregated(stats_csv: Path) -> dict[str, float]:
    with stats_csv.open() as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    requests = float(row["Request Count"])
    return {
        "requests": requests,
        "failures": float(row["Failure Count"]),
        "failure_ratio": float(row["Failure Count"]) / requests if requests else 1.0,
        "rps": float(row["Requests/s"]),
        "p50_ms": float(row["50%"]),
        "p95_ms": float(row["95%"]),
        "p99_ms": float(row["99%"]),
    }


def check_slo(result: dict[str, float], slo: SLO) -> list[str]:
    missed = []
    if result["requests"] == 0:
        missed.append("no request was answered")
    if result["failure_ratio"] > slo.max_failure_ratio:
        missed.append(f"failure ratio {result['failure_ratio']:.4f} > {slo.max_failure_ratio}")
    if result["p95_ms"] > slo.p95_ms:
        missed.append(f"p95 {result['p95_ms']:.0f} ms > {slo.p95_ms:.0f} ms")
    if result["p99_ms"] > slo.p99_ms:
        missed.append(f"p99 {result['p99_ms']:.0f} ms > {slo.p99_ms:.0f} ms")
    if result["rps"] < slo.min_rps:
        missed.append(f"throughput {result['rps']:.1f} req/s < {slo.min_rps:.1f} req/s")
    return missed


def run_locust(url: str, config: LoadTestConfig, payloads: Path, out: Path) -> Path:
    env = os.environ | {
        "LOADTEST_PAYLOADS": str(payloads),
        "INVALID_SHARE": str(config.invalid_share),
        "BATCH_SIZES": ",".join(map(str, config.batch_sizes)),
    }
    command = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"),
        "--headless", "--host", url, "--users", str(config.users),
        "--spawn-rate", str(config.spawn_rate), "--run-time", f"{config.duration_s}s",
        "--stop-timeout", "10", "--csv", str(out / "locust"), "--html", str(out / "report.html"),
        "--only-summary", "--exit-code-on-error", "0", config.user_class,
    ]
    print(f"==> locust: {config.users} {config.user_class}(s) for {config.duration_s}s "
          f"against {url}", flush=True)
    subprocess.run(command, env=env, check=True, timeout=config.duration_s + 120)
    return out / "locust_stats.csv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--host", help="a running service on loopback (default: start one)")
    parser.add_argument("--model", help="model name or tag for payloads and the started server "
                        "(default: the serving config's)")
    parser.add_argument("--users", type=int)
    parser.add_argument("--duration", type=int, help="seconds")
    parser.add_argument("--user-class", choices=["SingleRecordUser", "BatchUser", "MixedUser"])
    parser.add_argument("--invalid-share", type=float)
    parser.add_argument("--out", type=Path, help="report folder (default: reports/loadtest-TIME)")
    args = parser.parse_args(argv)

    raw = yaml.safe_load(args.config.read_text())
    overrides = {"users": args.users, "duration_s": args.duration,
                 "user_class": args.user_class, "invalid_share": args.invalid_share}
    given = {k: v for k, v in overrides.items() if v is not None}
    config = LoadTestConfig.model_validate(raw | given)
    if args.host:
        try:
            check_loopback(args.host)
        except ValueError as exc:
            parser.error(f"--host {exc}")

    model = model_tag(args.model) if args.model else load_serving_config().served_tag
    out = args.out or ROOT / "reports" / f"loadtest-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    payloads = write_payloads(model, out / "payloads.json")

    server = nullcontext(args.host) if args.host else bentoml_serve(
        {"MODEL_TAG": model}, out / "server.log")
    with server as url:
        stats = run_locust(url, config, payloads, out)
    result = aggregated(stats)
    missed = check_slo(result, config.slo)
    summary = {"config": config.model_dump(), "result": result, "slo_missed": missed}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(result, indent=2))
    print(f"==> reports in {out}: report.html, locust_stats.csv, summary.json")
    if missed:
        print("SLO MISSED: " + "; ".join(missed), file=sys.stderr)
        return 1
    print("SLO met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
