"""The prediction store on a real PostgreSQL 15 (tests/postgres.py) behind real `bentoml
serve` processes: two replicas share it, a database stopped under load never fails a
prediction, and SIGTERM leaves every accepted record in the database."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from loadtests.loadgen import closed_loop
from tests.postgres import PostgresServer, postgres_server  # noqa: F401  (fixture)
from tests.servers import serve_dataset
from tests.service.test_service import metric, records

pytestmark = pytest.mark.slow
REPORT = Path(__file__).resolve().parents[2] / "reports" / "store-postgres-fault.json"


def stored_ids(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text("SELECT request_id FROM predictions")).scalars())
    finally:
        engine.dispose()


def test_two_replicas_share_one_history_and_one_drift_window(
        trained_store, tmp_path: Path, postgres_server: PostgresServer) -> None:  # noqa: F811
    url = postgres_server.create_database()
    env = {"PREDICTION_STORE_URL": url}
    first_iter = serve_dataset(tmp_path / "a", "heart", extra_env=env)
    second_iter = serve_dataset(tmp_path / "b", "heart", extra_env=env)
    first, second = next(first_iter), next(second_iter)
    try:
        rows = records(first, 20, start=100)
        for replica, prefix in ((first, "a"), (second, "b")):
            for i, row in enumerate(rows):
                answer = httpx.post(f"{replica.url}/predict", json=row,
                                    headers={"X-Request-ID": f"{prefix}-{i}"})
                assert answer.status_code == 200
        # Each replica's two workers write on their own schedule: b-19 can be stored before
        # b-18, so wait for all of them (each within flush_interval_s of its answer).
        wanted = {f"{p}-{i}" for p in "ab" for i in range(20)}
        deadline = time.monotonic() + 20
        while True:
            page = httpx.get(f"{first.url}/predictions", params={"limit": 1000}).json()
            seen = {item["request_id"] for item in page["items"]}
            if wanted <= seen or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert wanted <= seen, sorted(wanted - seen)
        assert httpx.get(f"{second.url}/predictions/a-7").json()["features"]["age"] == \
            rows[7]["age"]
        # One replica's check sees both replicas' traffic; the other serves its result.
        summary = httpx.post(f"{first.url}/drift/check", timeout=180).json()
        assert summary["window_rows"] == 40
        assert httpx.get(f"{second.url}/drift").json()["checked_at"] == summary["checked_at"]
        report = httpx.get(f"{second.url}/drift/report")
        assert report.status_code == 200 and "<html" in report.text[:2000].lower()
    finally:
        first_iter.close()
        second_iter.close()


def test_postgres_stopped_under_load(trained_store, tmp_path: Path) -> None:
    """Down for a while under closed-loop load: every prediction is answered 200 and each
    record is either written once the database is back or counted as dropped."""
    database = PostgresServer()
    database.start()
    try:
        url = database.create_database()
        # A buffer smaller than what arrives while the database is down: both outcomes.
        server_iter = serve_dataset(tmp_path, "heart", extra_env={"PREDICTION_STORE_URL": url},
                                    config={"monitoring": {"store": {"buffer_size": 300}}})
        server = next(server_iter)
        try:
            bodies = records(server, 50)
            predict = f"{server.url}/predict"
            up = asyncio.run(closed_loop(predict, bodies, clients=8, seconds=4))
            database.stop("fast")
            down = asyncio.run(closed_loop(predict, bodies, clients=8, seconds=10))
            during = httpx.get(f"{server.url}/metrics").text
            pending = metric(during, "tabular_store_pending_records")
            failed = metric(during, "tabular_store_failed_writes_total", absent_ok=True)
            database.start()
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                after = httpx.get(f"{server.url}/metrics").text
                if metric(after, "tabular_store_pending_records") == 0:
                    break
                time.sleep(1)
            dropped = metric(after, "tabular_store_dropped_records_total", absent_ok=True)
            written = len(stored_ids(url))
            answered = up.statuses[200] + down.statuses[200]
            counts = {
                "answered_200_while_up": up.statuses[200],
                "answered_200_while_down": down.statuses[200],
                "other_statuses": {str(k): v for k, v in (up.statuses + down.statuses).items()
                                   if k != 200},
                "errors": dict(up.errors + down.errors),
                "p99_ms_up": round(up.percentile(0.99), 1),
                "p99_ms_down": round(down.percentile(0.99), 1),
                "pending_while_down": pending, "failed_writes_while_down": failed,
                "written_after_restart": written, "dropped": dropped,
                "pending_at_end": metric(after, "tabular_store_pending_records"),
            }
            REPORT.parent.mkdir(exist_ok=True)
            REPORT.write_text(json.dumps(counts, indent=2) + "\n")
            assert up.failures == 0 and down.failures == 0, counts
            assert down.statuses[200] > 0 and pending > 0 and failed > 0, counts
            # Every answered record is in the database, or counted as dropped; none twice.
            assert written + dropped == answered and counts["pending_at_end"] == 0, counts
            assert dropped > 0, counts  # the buffer did overflow (bounded memory)
            # Not slowed: the database's outage costs the requests nothing measurable.
            assert down.percentile(0.99) < max(4 * up.percentile(0.99), 500), counts
        finally:
            server_iter.close()
    finally:
        database.remove()


def test_sigterm_leaves_every_accepted_record_in_the_database(
        trained_store, tmp_path: Path, postgres_server: PostgresServer) -> None:  # noqa: F811
    url = postgres_server.create_database()
    server_iter = serve_dataset(tmp_path, "iris", extra_env={"PREDICTION_STORE_URL": url},
                                config={"monitoring": {"store": {"flush_interval_s": 30.0}}})
    server = next(server_iter)
    rows = records(server, 30)
    ids = []
    for i, row in enumerate(rows):
        answer = httpx.post(f"{server.url}/predict", json=row, headers={"X-Request-ID": f"s-{i}"})
        ids.append(answer.json()["request_id"])
    batch = httpx.post(f"{server.url}/predict_batch", json={"records": rows},
                       headers={"X-Request-ID": "sb"}).json()
    ids += [p["request_id"] for p in batch["predictions"]]
    # A 30 s flush interval: most likely nothing was written before the shutdown flush.
    server_iter.close()  # SIGTERM to `bentoml serve`, then wait for it to exit
    assert sorted(stored_ids(url)) == sorted(ids) and len(ids) == 60
