"""What the prediction store costs at maximum throughput: the service as configured, with
`monitoring.store.enabled` on and off, under the benchmark's closed-loop load on /predict
(loadtests.benchmark's champion, clients and seconds), in alternating rounds so that drift
in the machine's speed falls on both. Writes reports/store-cost.json.

    python -m loadtests.store_cost [--rounds 4] [--seconds 20] [--postgres-url URL]
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

import yaml

from loadtests.benchmark import (
    CONSOLE,
    DEFAULT_CONFIG,
    BenchmarkConfig,
    bentoml_server,
    measure,
    train_champion,
)
from loadtests.benchmark_report import with_section
from loadtests.server import ROOT

OUT = ROOT / "reports" / "store-cost.json"


def serving_config(home: Path, enabled: bool) -> Path:
    config = yaml.safe_load((ROOT / "configs" / "serving.yaml").read_text())
    config["monitoring"]["directory"] = str(home / "capture")
    config["monitoring"]["drift"]["enabled"] = False  # measure the store, not Evidently
    config["monitoring"]["store"] |= {"enabled": enabled,
                                      "url": f"sqlite:///{home / 'predictions.db'}"}
    path = home / f"serving-store-{'on' if enabled else 'off'}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(config: BenchmarkConfig, rounds: int, postgres_url: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="store-cost-") as tmp:
        home = Path(tmp)
        CONSOLE.print(f"[bold]training[/] {config.dataset} ({config.candidate}) into {home}")
        tag = train_champion(config, home)
        from loadtests.payloads import reference_records

        _, records = reference_records(tag)
        env = {"BENTOML_HOME": os.environ["BENTOML_HOME"], "MODEL_TAG": tag,
               "BENTOML_DO_NOT_TRACK": "true"}
        if postgres_url:
            env["PREDICTION_STORE_URL"] = postgres_url
        measured: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
        for round_ in range(rounds):
            # off-on, then on-off (ABBA): a machine speeding up or slowing down through the
            # run falls on both settings alike instead of always favouring the second.
            for state in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                settings = {"SERVING_CONFIG": str(serving_config(home, state == "on"))}
                log = home / f"{state}-{round_}.log"
                with bentoml_server(env | settings, log) as (url, pid):
                    row = measure(f"store {state}, round {round_ + 1}", url, pid, records,
                                  config.users, config.seconds, config.warmup_seconds)
                measured[state].append(row.result.summary() | {
                    "server_cpu": round(row.server_cpu or 0, 2)})
    throughput = {state: statistics.fmean(r["requests_per_s"] for r in rows)
                  for state, rows in measured.items()}
    # The service's own CPU per request (its process tree only: not the load generator,
    # not a PostgreSQL server on the same machine), steadier than throughput here.
    cpu_ms = {state: statistics.median(1000 * r["server_cpu"] / r["requests_per_s"]
                                       for r in rows) for state, rows in measured.items()}
    # Each round's on/off ratio, from two measurements minutes apart at most.
    paired = statistics.median(on["requests_per_s"] / off["requests_per_s"]
                               for on, off in zip(measured["on"], measured["off"], strict=True))
    return {
        "dataset": config.dataset, "candidate": config.candidate, "clients": config.users,
        "seconds": config.seconds, "rounds": rounds,
        "store": "postgresql" if postgres_url else "sqlite",
        "requests_per_s": {k: round(v, 1) for k, v in throughput.items()},
        "cost_pct": round(100 * (1 - throughput["on"] / throughput["off"]), 2),
        "paired_cost_pct": round(100 * (1 - paired), 2),
        "server_cpu_ms_per_request": {k: round(v, 3) for k, v in cpu_ms.items()},
        "cpu_cost_pct": round(100 * (cpu_ms["on"] / cpu_ms["off"] - 1), 2),
        "runs": measured,
    }


def section(report: dict[str, Any]) -> str:
    """The BENCHMARKS.md section of one run: one row with the store on and off."""
    rate, cpu = report["requests_per_s"], report["server_cpu_ms_per_request"]
    return "\n".join([
        f"## Prediction store cost ({report['store']})", "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
        "`python -m loadtests.store_cost`: the service as configured (drift off), "
        f"{report['clients']} closed-loop clients on /predict, {report['rounds']} rounds of "
        f"{report['seconds']:.0f} s ordered off-on, on-off, ... ({report['dataset']}, "
        f"{report['candidate']}).", "",
        "| store | req/s | server CPU ms per request | cost (means) | cost (median of the "
        "rounds' own) | target |", "|---|---|---|---|---|---|",
        f"| off | {rate['off']:,.0f} | {cpu['off']:.3f} | | | |",
        f"| on | {rate['on']:,.0f} | {cpu['on']:.3f} | {report['cost_pct']:.1f}% | "
        f"{report['paired_cost_pct']:.1f}% | <= 5%: "
        f"{'yes' if report['cost_pct'] <= 5 else 'no'} |",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, help="override the per-measurement seconds")
    parser.add_argument("--postgres-url", help="store in this PostgreSQL instead of SQLite")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--benchmarks", type=Path, default=ROOT / "BENCHMARKS.md",
                        help="the Markdown report whose store-cost section this rewrites")
    args = parser.parse_args(argv)
    raw = yaml.safe_load(args.config.read_text())
    if args.seconds:
        raw["seconds"] = args.seconds
    report = run(BenchmarkConfig.model_validate(raw), args.rounds, args.postgres_url)
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.benchmarks.is_file():  # the row beside the serving benchmark's
        args.benchmarks.write_text(with_section(args.benchmarks.read_text(),
                                                f"store-cost-{report['store']}",
                                                section(report)))
    CONSOLE.print(f"store off {report['requests_per_s']['off']} req/s, on "
                  f"{report['requests_per_s']['on']} req/s: cost {report['cost_pct']}% (median of "
                  f"the rounds' own: {report['paired_cost_pct']}%); server CPU per request "
                  f"{report['cpu_cost_pct']:+}% -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
