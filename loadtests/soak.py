"""Sustained load: mixed traffic at half the measured maximum rate for a fixed time, with the
server's memory (RSS of `bentoml serve` and all its workers) sampled throughout.

    python -m loadtests.soak [--model NAME] [--minutes 10] [--warmup 60] [--out DIR]

1. Measures the maximum rate: 20 s closed loop, 64 clients, single records.
2. Sends an open-loop mix at half that rate: 85% single records, 10% batches of 10, 5%
   invalid records (those must get 400). Every other answer than 200 (400 for the invalid
   ones) is a failure, and so is every request left without an answer.
3. Reports failures, latency percentiles per minute (from each request's scheduled send),
   memory growth after warm-up (last minute's median RSS against the first minute's after
   warm-up; target < 10%) and latency ageing (last minute's p99 against the first minute's
   after warm-up; target <= +20%).
Writes reports/soak-TIME/soak.json and prints a summary; exits 1 if a target is missed.
Run by hand (15 minutes with the defaults); loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from loadtests.loadgen import LoadResult, Request, closed_loop, open_loop, percentile
from loadtests.payloads import invalidate, reference_records
from loadtests.server import ROOT, bentoml_command, serve_command
from serving.config import load_serving_config, model_tag

MAX_MEMORY_GROWTH = 0.10
MAX_P99_GROWTH = 0.20  # last minute's p99 against the first minute's after warm-up


def mixed_bodies(spec: Any, records: list[dict], seed: int = 0) -> list[Request]:
    rng = random.Random(seed)
    bodies = []
    for i in range(2000):
        roll = rng.random()
        if roll < 0.85:
            bodies.append(Request(json.dumps(records[i % len(records)]).encode(), "/predict"))
        elif roll < 0.95:
            batch = rng.sample(records, min(10, len(records)))
            bodies.append(Request(json.dumps({"records": batch}).encode(), "/predict_batch"))
        else:
            bad = invalidate(spec, records[i % len(records)], rng)
            bodies.append(Request(json.dumps(bad).encode(), "/predict", expected=400))
    return bodies


class MemorySampler(threading.Thread):
    """RSS of a process and all its children, every `every` seconds."""

    def __init__(self, pid: int, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.root, self.every = psutil.Process(pid), every
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MiB)
        self.stop = threading.Event()

    def rss_mib(self) -> float:
        total = 0
        for process in [self.root, *self.root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # a worker restarting
                total += process.memory_info().rss
        return total / 2**20

    def run(self) -> None:
        start = time.monotonic()
        while not self.stop.wait(self.every):
            self.samples.append((time.monotonic() - start, self.rss_mib()))


def summarize(soak: LoadResult, sampler: MemorySampler, warmup_s: float, total_s: float,
              rate: float, max_rate: float) -> dict[str, Any]:
    after = [(t, m) for t, m in sampler.samples if t >= warmup_s]
    first = [m for t, m in after if t < warmup_s + 60]
    last = [m for t, m in after if t >= total_s - 60]
    base, end = statistics.median(first), statistics.median(last)
    per_minute = {
        minute: {"requests": len(ms), "p50_ms": round(percentile(ms, 0.5), 1),
                 "p99_ms": round(percentile(ms, 0.99), 1)}
        for minute, ms in sorted(soak.by_bucket_ms.items())}
    # The last whole minute; a run shorter than that has one (partial) minute to compare.
    first_minute = int(warmup_s // 60)
    last_minute = max(first_minute, int(total_s // 60) - 1)
    return {
        "max_rate_req_s": round(max_rate, 1), "offered_rate_req_s": round(rate, 1),
        "seconds": round(total_s), "warmup_s": warmup_s, "requests": soak.requests,
        "statuses": dict(soak.statuses), "failures": soak.failures,
        "failure_kinds": soak.failure_kinds, "per_minute": per_minute,
        "rss_mib_after_warmup": round(base, 1), "rss_mib_at_end": round(end, 1),
        "rss_mib_max": round(max(m for _, m in sampler.samples), 1),
        "memory_growth": round((end - base) / base, 4),
        "p99_first_minute_ms": per_minute[first_minute]["p99_ms"],
        "p99_last_minute_ms": per_minute[last_minute]["p99_ms"],
        "p99_growth": round(per_minute[last_minute]["p99_ms"] / per_minute[first_minute]["p99_ms"]
                            - 1, 4),
        "rss_samples": [(round(t), round(m, 1)) for t, m in sampler.samples],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model name or tag (default: the serving config's)")
    parser.add_argument("--minutes", type=float, default=10.0, help="measured load after warm-up")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds of warm-up load")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    model = model_tag(args.model) if args.model else load_serving_config().served_tag
    spec, records = reference_records(model)
    out = args.out or ROOT / "reports" / f"soak-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    total_s = args.warmup + args.minutes * 60
    with serve_command(bentoml_command(), {"MODEL_TAG": model}, out / "server.log") as (
            url, process):
        print(f"==> {url}: measuring the maximum rate (20 s, 64 clients)", flush=True)
        peak = asyncio.run(closed_loop(f"{url}/predict", records, 64, seconds=20))
        rate = peak.throughput / 2
        print(f"    {peak.throughput:.0f} req/s; soaking at {rate:.0f} req/s for "
              f"{args.warmup:.0f} s warm-up + {args.minutes:g} min", flush=True)
        soak = LoadResult()
        sampler = MemorySampler(process.pid)
        sampler.start()
        progress = threading.Thread(target=_progress, args=(soak, sampler, total_s), daemon=True)
        progress.start()
        # Latency counts from each request's scheduled send, per minute of the schedule.
        asyncio.run(open_loop(url, mixed_bodies(spec, records), rate, total_s, bucket_s=60,
                              result=soak))
        sampler.stop.set()
        sampler.join()
    summary = summarize(soak, sampler, args.warmup, total_s, rate, peak.throughput)
    (out / "soak.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items()
                      if k not in ("rss_samples", "per_minute")}, indent=2))
    missed = []
    if summary["failures"]:
        missed.append(f"{summary['failures']} failed request(s)")
    if summary["memory_growth"] >= MAX_MEMORY_GROWTH:
        missed.append(f"memory grew {summary['memory_growth']:.1%} (target < 10%)")
    if summary["p99_growth"] > MAX_P99_GROWTH:
        missed.append(f"p99 grew {summary['p99_growth']:.0%} from the first to the last minute "
                      f"(target <= {MAX_P99_GROWTH:.0%})")
    print(f"==> {out / 'soak.json'}: " + ("; ".join(missed) if missed else "targets met"))
    return 1 if missed else 0


def _progress(soak: LoadResult, sampler: MemorySampler, total_s: float) -> None:
    start = time.monotonic()
    while time.monotonic() - start < total_s - 30:
        time.sleep(30)
        elapsed = time.monotonic() - start
        rss = sampler.samples[-1][1] if sampler.samples else 0.0
        print(f"    {elapsed:4.0f}/{total_s:.0f} s: {sum(soak.statuses.values())} answered, "
              f"{soak.failures} failed, RSS {rss:.0f} MiB", flush=True)


if __name__ == "__main__":
    sys.exit(main())
