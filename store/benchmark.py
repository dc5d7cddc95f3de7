"""How many records per second the writer sustains into a database: submit N records of a
realistic size (30 numeric features, a binary classifier's answer) as fast as possible,
then close (flush); records/s = N / time until the last one is committed.

    python -m store.benchmark [--records 20000] [--postgres-url URL] [--out FILE.json]

Without --postgres-url only SQLite (a temporary file) is measured. FILE defaults to
reports/store-benchmark.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy

from store.config import redact
from store.store import PredictionStore
from store.writer import PredictionRecord

DEFAULT_OUT = Path("reports/store-benchmark.json")


def _records(count: int, run: str) -> list[PredictionRecord]:
    now = datetime.now(UTC)
    features = {f"feature_{j}": 1.0 + j / 7 for j in range(30)}
    answer = {"prediction": "malignant", "probabilities": {"benign": 0.1, "malignant": 0.9},
              "probability": 0.9, "risk_level": "high"}
    return [PredictionRecord(f"{run}-{i}", now, "bench-model", "1", "predict",
                             features, answer) for i in range(count)]


def benchmark_writer(url: str, *, records: int = 20_000, batch_size: int = 500,
                     rounds: int = 3) -> dict[str, Any]:
    """Best of `rounds` (each into the same database, fresh request ids)."""
    store = PredictionStore.from_url(url)
    results = []
    try:
        for _ in range(rounds):
            batch = _records(records, uuid.uuid4().hex[:8])
            writer = store.writer(buffer_size=records, batch_size=batch_size,
                                  flush_interval_s=0.05)
            started = time.perf_counter()
            for item in batch:
                writer.submit(item)
            submitted = time.perf_counter()
            stats = writer.close(timeout=300)
            done = time.perf_counter()
            if stats.written != records:
                raise RuntimeError(f"wrote {stats.written} of {records}: {stats}")
            results.append({"records_per_s": round(records / (done - started)),
                            "submit_us_per_record": round(
                                (submitted - started) / records * 1e6, 2),
                            "seconds": round(done - started, 3)})
    finally:
        store.close()
    best = max(results, key=lambda r: r["records_per_s"])
    return {"database": store.dialect, "url": redact(url), "records": records,
            "batch_size": batch_size, **best, "rounds": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Records/s the store's writer sustains")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--postgres-url", help="a PostgreSQL database to write into")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        runs.append(benchmark_writer(f"sqlite:///{tmp}/bench.db", records=args.records,
                                     batch_size=args.batch_size))
    if args.postgres_url:
        runs.append(benchmark_writer(args.postgres_url, records=args.records,
                                     batch_size=args.batch_size))
    report = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "sqlalchemy": sqlalchemy.__version__},
              "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for run in runs:
        print(f"{run['database']}: {run['records_per_s']:,} records/s "
              f"(submit {run['submit_us_per_record']} us/record, batches of "
              f"{run['batch_size']})")
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
