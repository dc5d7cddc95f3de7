"""Retention deletes only rows older than retention_days; drift runs and the drift window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from store import PredictionStore
from tests.store.conftest import record, write_all

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _summary(model: str, version: str, checked_at: datetime, share: float) -> dict:
    return {"model_name": model, "model_version": version,
            "checked_at": checked_at.timestamp(), "window_rows": 100, "reference_rows": 50,
            "drift_share": share, "share_threshold": 0.5, "drift_detected": share >= 0.5,
            "features": [{"feature": "x", "method": "K-S p_value", "score": 0.01,
                          "threshold": 0.05, "drifted": True}]}


def test_retention_deletes_only_old_rows(store: PredictionStore) -> None:
    ages = [40, 31, 30.5, 29, 10, 0]  # days
    write_all(store, [record(i, at=NOW - timedelta(days=d)) for i, d in enumerate(ages)])
    old_run = store.save_drift_run(_summary("m", "1", NOW - timedelta(days=60), 0.1))
    store.save_drift_run(_summary("m", "1", NOW - timedelta(days=45), 0.2))
    result = store.cleanup(30, now=NOW, chunk=2)  # small chunks: several rounds
    assert (result.predictions, result.drift_runs) == (3, 1)
    kept = [item["request_id"] for item in store.history(limit=100).items]
    assert kept == ["req-5", "req-4", "req-3"]
    latest = store.latest_drift_run("m")
    assert latest is not None and latest["run_id"] != old_run  # the newest run stays
    assert store.cleanup(30, now=NOW).predictions == 0


def test_drift_runs_latest_per_model_with_report(store: PredictionStore) -> None:
    assert store.latest_drift_run("m") is None
    store.save_drift_run(_summary("m", "1", NOW - timedelta(hours=2), 0.1), "<html>old</html>")
    newest = _summary("m", "2", NOW - timedelta(hours=1), 0.75)
    run_id = store.save_drift_run(newest, "<html>new</html>")
    store.save_drift_run(_summary("other", "1", NOW, 0.0))
    latest = store.latest_drift_run("m")
    assert latest["run_id"] == run_id and latest["summary"] == newest
    assert "report_html" not in latest
    assert latest["checked_at_iso"] == (NOW - timedelta(hours=1)).isoformat()
    assert store.latest_drift_run("m", with_report=True)["report_html"] == "<html>new</html>"
    assert store.latest_drift_run("m", "1")["summary"]["drift_share"] == 0.1


def test_recent_features_is_the_newest_window_of_every_writer(store: PredictionStore) -> None:
    # Two writers (two replicas), interleaved in time; one feature kept out of the store.
    base = NOW - timedelta(minutes=10)
    replica_a = [record(i, at=base + timedelta(seconds=2 * i),
                        features={"x": float(i), "secret": 1}) for i in range(50)]
    replica_b = [record(100 + i, at=base + timedelta(seconds=2 * i + 1),
                        features={"x": 100.0 + i, "secret": 1}) for i in range(50)]
    write_all(store, replica_a, exclude_features=["secret"])
    write_all(store, replica_b, exclude_features=["secret"])
    write_all(store, [record(900, model="other")])
    frame = store.recent_features("m", limit=10)
    assert list(frame.columns) == ["x"]
    assert frame["x"].tolist() == [45.0, 145.0, 46.0, 146.0, 47.0, 147.0, 48.0, 148.0,
                                   49.0, 149.0]  # oldest first, both replicas
    assert len(store.recent_features("m", limit=1000)) == 100
    assert store.recent_features("m", limit=10, model_version="9").empty
