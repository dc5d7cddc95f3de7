"""Replay raw records (a data set's source format) against a running service.

    python -m loadtests.replay --dataset heart [--data FILE_OR_URL] [--url http://127.0.0.1:3000]

The rows are read by the training data loader (training/data.py), from --data or else from
the spec's own source; they are not validated, so rows the service must refuse reach it.
Rows go in batches to /predict_batch; a batch refused for invalid rows is retried row by
row, so valid rows are still scored (and captured) and the refused ones are counted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx

from contract.spec import load_dataset_spec
from loadtests.loadgen import check_loopback
from serving.model_store import example_record
from training.data import read_raw


def records_from_csv(dataset: str, path: str | Path | None = None) -> list[dict]:
    """The data set's raw rows (from `path`, or the spec's source) as a client sends them:
    JSON types, the spec's spelling of categories, missing values left out."""
    spec = load_dataset_spec(dataset)
    frame, _ = read_raw(spec, path)
    rows = []
    for row in frame[spec.feature_names].to_dict("records"):
        record = example_record(spec, row)
        rows.append({k: v for k, v in record.items() if v is not None})
    return rows


def replay(url: str, records: list[dict], batch: int = 100) -> dict[str, int]:
    check_loopback(url, "replay")
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
    parser.add_argument("--data", help="CSV file or URL (default: the data set's own source)")
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    args = parser.parse_args(argv)
    print(replay(args.url, records_from_csv(args.dataset, args.data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
