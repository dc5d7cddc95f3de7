"""What the drift monitor says when nothing keeps the records a check would read."""

from __future__ import annotations

from types import SimpleNamespace

import yaml
from starlette.testclient import TestClient

from serving.config import DEFAULT_CONFIG, MonitoringConfig
from serving.drift_monitor import NOTHING_KEPT, DriftMonitor

SERVED = SimpleNamespace(name="m")  # only its name is read until a check runs


def monitoring(store: bool, capture: bool) -> MonitoringConfig:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())["monitoring"]
    raw["store"]["enabled"], raw["capture"]["enabled"] = store, capture
    return MonitoringConfig.model_validate(raw)


def test_the_store_or_the_capture_keeps_records() -> None:
    store = object()  # a PredictionLog stand-in: only its presence is read
    assert DriftMonitor(SERVED, monitoring(True, False), store).keeps_records()
    assert DriftMonitor(SERVED, monitoring(False, True)).keeps_records()
    off = DriftMonitor(SERVED, monitoring(False, False))
    assert not off.keeps_records()
    assert off.status() == {"source": None, "hint": NOTHING_KEPT}
    assert DriftMonitor(SERVED, monitoring(False, True)).status()["source"] == "capture"


def test_a_check_with_nothing_kept_is_409_naming_the_settings() -> None:
    import bentoml
    from fastapi import FastAPI

    from serving.store_api import make_router

    # The router's model is read for the feedback bodies only: a regressor's stand-in.
    app = FastAPI()
    app.include_router(make_router(SimpleNamespace(classes=None, spec=SimpleNamespace(
        is_classifier=False))))
    service = SimpleNamespace(drift=DriftMonitor(SERVED, monitoring(False, False)))
    app.dependency_overrides[bentoml.get_current_service] = lambda: service
    answer = TestClient(app).post("/drift/check")
    assert answer.status_code == 409
    assert answer.json()["error"] == NOTHING_KEPT
