"""Replay a CSV of raw records (in a data set's source format) against a running service.

    python -m loadtests.replay --dataset heart --data FILE [--url http://127.0.0.1:3000]

Rows go in batches to /predict_batch; a batch refused for invalid rows is retried row by
row, so valid rows are still scored (and captured) and the refused ones are counted.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pandas as pd

from contract.spec import load_dataset_spec
from serving.model_store import example_record

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def records_from_csv(dataset: str, path: Path) -> list[dict]:
    spec = load_dataset_spec(dataset)
    frame = pd.read_csv(path, header=None if spec.source.columns else "infer",
                        names=spec.source.columns, na_values=spec.source.na_values or None)
    frame = frame.rename(columns=spec.source.rename)
    rows = []
    for row in frame[spec.feature_names].to_dict("records"):
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        record = example_record(spec, clean)
        rows.append({k: v for k, v in record.items() if v is not None})
    return rows


def replay(url: str, records: list[dict], batch: int = 100) -> dict[str, int]:
    if urlparse(url).hostname not in LOOPBACK:
        raise ValueError(f"{url}: replay goes to loopback addresses only")
    scored = refused = 0
    with httpx.Client(base_url=url, timeout=60) as client:
        for start in range(0, len(records), batch):
            chunk = records[start:start + batch]
            if client.post("/predict_batch", json={"records": chunk}).status_code == 200:
                scored += len(chunk)
                continue
            for record in chunk:
                if client.post("/predict", json=record).status_code == 200:
                    scored += 1
                else:
                    refused += 1
    return {"scored": scored, "refused": refused}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    args = parser.parse_args(argv)
    print(replay(args.url, records_from_csv(args.dataset, args.data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
