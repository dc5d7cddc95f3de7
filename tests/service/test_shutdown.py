"""SIGTERM: the capture keeps every record the service accepted."""

from pathlib import Path

import httpx
import pytest

from serving.capture import read_capture
from tests.servers import serve_dataset
from tests.service.test_service import records

pytestmark = pytest.mark.slow  # a real `bentoml serve`, stopped with SIGTERM


def test_every_scored_record_is_captured_after_shutdown(trained_store, tmp_path: Path) -> None:
    server_iter = serve_dataset(tmp_path, "iris")
    server = next(server_iter)
    rows = records(server, 30)
    for row in rows:
        assert httpx.post(f"{server.url}/predict", json=row).status_code == 200
    assert httpx.post(f"{server.url}/predict_batch", json={"records": rows}).status_code == 200
    server_iter.close()  # SIGTERM to `bentoml serve`, then wait for it to exit
    lines = read_capture(server.capture_dir, "iris-classifier", last=1000)
    assert len(lines) == 60
    assert lines[0]["features"]["sepal_length"] == rows[0]["sepal_length"]
