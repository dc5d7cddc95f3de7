"""The JSON-lines capture's writer thread: everything accepted is written by close(), in
order, and a record that cannot be serialised costs only itself. (Rotation and sensitive
features: tests/service/test_drift.py.)"""

from __future__ import annotations

import json
from pathlib import Path

from serving.capture import PredictionCapture, read_capture


def capture(tmp_path: Path, **kwargs) -> PredictionCapture:
    options = {"max_bytes": 10_000_000, "backup_count": 2, "exclude": set()} | kwargs
    return PredictionCapture(tmp_path, model_name="m", model_version="v1", **options)


def test_close_writes_every_queued_record_in_order(tmp_path: Path) -> None:
    cap = capture(tmp_path, exclude={"secret"})
    for i in range(2_500):  # more than one write batch
        cap.record([{"x": i, "secret": "s"}], [{"prediction": "yes", "probability": 0.25}])
    cap.close()
    lines = [json.loads(line) for line in cap.path.read_text().splitlines()]
    assert [line["features"] for line in lines] == [{"x": i} for i in range(2_500)]
    assert lines[0]["probability"] == 0.25 and lines[0]["model_version"] == "v1"
    assert [r["features"]["x"] for r in read_capture(tmp_path, "m", 10)] == \
        list(range(2_490, 2_500))


def test_a_record_that_cannot_be_serialised_costs_only_itself(tmp_path: Path) -> None:
    cap = capture(tmp_path)
    cap.record([{"x": 1}], [{"prediction": 1.0}])
    cap.record([{"x": object()}], [{"prediction": 2.0}])
    cap.record([{"x": 3}], [{"prediction": 3.0}])
    cap.close()
    assert [json.loads(line)["prediction"] for line in cap.path.read_text().splitlines()] == \
        [1.0, 3.0]
