"""Locust users for the prediction service.

Payloads: LOADTEST_PAYLOADS (a JSON file written by loadtests.run from the served model's
reference sample). INVALID_SHARE (0..1, default 0) sends that share of deliberately invalid
records, which count as successes only when answered 400.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:3000 SingleRecordUser
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from locust import FastHttpUser, constant, events, tag, task

from loadtests.payloads import invalidate, load_payloads

STATE: dict = {}


@events.init.add_listener
def _load(environment, **_: object) -> None:
    path = os.environ.get("LOADTEST_PAYLOADS")
    if not path:
        raise SystemExit("set LOADTEST_PAYLOADS (python -m loadtests.run writes it)")
    STATE["spec"], STATE["records"] = load_payloads(Path(path))
    STATE["invalid_share"] = float(os.environ.get("INVALID_SHARE", "0"))
    STATE["batch_sizes"] = [int(s) for s in os.environ.get("BATCH_SIZES", "10,100,500").split(",")]


class _PredictionUser(FastHttpUser):
    abstract = True
    wait_time = constant(0)  # closed loop: each user sends as fast as it is answered

    def on_start(self) -> None:
        self.rng = random.Random(hash(id(self)))

    def record(self) -> tuple[dict, bool]:
        record = self.rng.choice(STATE["records"])
        if self.rng.random() < STATE["invalid_share"]:
            return invalidate(STATE["spec"], record, self.rng), False
        return record, True

    def post(self, path: str, body: dict, valid: bool, name: str) -> None:
        with self.client.post(path, json=body, name=name, catch_response=True) as response:
            if valid and response.status_code != 200:
                response.failure(f"valid request answered {response.status_code}")
            elif not valid and response.status_code != 400:
                response.failure(f"invalid request answered {response.status_code}, not 400")
            else:
                response.success()

    def single(self) -> None:
        record, valid = self.record()
        self.post("/predict", record, valid, "/predict" if valid else "/predict [invalid]")

    def batch(self) -> None:
        size = self.rng.choice(STATE["batch_sizes"])
        records = [self.rng.choice(STATE["records"]) for _ in range(size)]
        self.post("/predict_batch", {"records": records}, True, f"/predict_batch [{size}]")


class SingleRecordUser(_PredictionUser):
    @tag("single")
    @task
    def predict(self) -> None:
        self.single()


class BatchUser(_PredictionUser):
    @tag("batch")
    @task
    def predict_batch(self) -> None:
        self.batch()


class MixedUser(_PredictionUser):
    """Mostly single records, some batches, an occasional metadata read."""

    @task(20)
    def predict(self) -> None:
        self.single()

    @task(2)
    def predict_batch(self) -> None:
        self.batch()

    @task(1)
    def model_info(self) -> None:
        self.client.get("/model_info")
