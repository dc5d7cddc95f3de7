"""Both engines against the running service, and a run killed mid-way (slow: trained
champions, `bentoml serve`, a Spark local[2] session, a process pool)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from contract.spec import load_dataset_spec
from scoring.cli import main
from serving.model_store import example_record
from tests.conftest import CLEVELAND
from tests.servers import MAX_BATCH, Server
from training.data import read_raw

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def service_answers(server: Server) -> list[dict]:
    """/predict_batch on every training row, as the service's own JSON records."""
    spec = server.dataset.spec
    records = [example_record(spec, row) for row in server.dataset.features.to_dict("records")]
    answers = []
    for start in range(0, len(records), MAX_BATCH):
        reply = httpx.post(f"{server.url}/predict_batch", timeout=60,
                           json={"records": records[start:start + MAX_BATCH]})
        reply.raise_for_status()
        answers += reply.json()["predictions"]
    return answers


def input_file(dataset: str, tmp: Path) -> Path:
    """heart: the Cleveland file as published (headerless, '?'); diabetes: Parquet."""
    if dataset == "heart":
        return CLEVELAND
    frame, _ = read_raw(load_dataset_spec(dataset))
    frame.to_parquet(tmp / f"{dataset}.parquet")
    return tmp / f"{dataset}.parquet"


def assert_same_as_service(scores: pd.DataFrame, answers: list[dict], dataset: str) -> None:
    spec = load_dataset_spec(dataset)
    scores = scores.sort_values("row_id").reset_index(drop=True)
    assert scores["row_id"].tolist() == list(range(len(answers)))
    assert scores["prediction"].tolist() == [a["prediction"] for a in answers] or \
        not spec.is_classifier
    if spec.is_classifier:
        for label in spec.target.classes or []:
            np.testing.assert_allclose(scores[f"probability_{label}"],
                                       [a["probabilities"][label] for a in answers],
                                       rtol=0, atol=1e-9)
    else:
        np.testing.assert_allclose(scores["prediction"], [a["prediction"] for a in answers],
                                   rtol=0, atol=1e-9)
    assert set(scores["model_version"]) == {answers[0]["model_version"]}
    assert set(scores["model_name"]) == {answers[0]["model_name"]}


@pytest.fixture(scope="module", params=["heart", "diabetes"])
def served(request, tmp_path_factory) -> tuple[str, Server, list[dict], Path]:
    server = request.getfixturevalue(f"{request.param}_server")
    tmp = tmp_path_factory.mktemp(f"scoring-{request.param}")
    return request.param, server, service_answers(server), input_file(request.param, tmp)


@pytest.mark.parametrize("engine", ["local", "spark"])
def test_engines_answer_as_the_service(served, engine: str, tmp_path) -> None:
    dataset, server, answers, source = served
    output = tmp_path / "scores.parquet"
    args = ["--model", server.model_name, "--input", str(source), "--output", str(output),
            "--engine", engine, "--chunk-rows", "100"]
    args += ["--master", "local[2]"] if engine == "spark" else ["--workers", "2"]
    assert main(args, console=Console(quiet=True)) == 0
    assert_same_as_service(pd.read_parquet(output), answers, dataset)


def read_sorted(path: Path) -> pd.DataFrame:
    """A CSV file or Spark's folder of CSV parts, in row id order (then by its next column)."""
    frame = pd.read_csv(path) if path.is_file() else pd.concat(
        [pd.read_csv(p) for p in sorted(path.glob("part-*.csv"))], ignore_index=True)
    return frame.sort_values(list(frame.columns[:2])).reset_index(drop=True)


def big_file(path: Path, rows: int) -> Path:
    frame, _ = read_raw(load_dataset_spec("heart"), CLEVELAND)
    frame.sample(rows, replace=True, random_state=0).to_csv(path, index=False)
    return path


def test_a_killed_run_leaves_no_output(quick_models, tmp_path) -> None:
    source = big_file(tmp_path / "big.csv", 300_000)
    output = tmp_path / "out" / "scores.parquet"
    command = [sys.executable, "-m", "scoring", "--model", quick_models["heart"],
               "--input", str(source), "--output", str(output), "--workers", "2",
               "--chunk-rows", "5000"]
    process = subprocess.Popen(command, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        temp = output.parent / f".scores.parquet.tmp-{process.pid}"
        deadline = time.monotonic() + 240
        # mid-run: the temporary output has grown past its first chunks
        while not (temp.exists() and temp.stat().st_size > 100_000):
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run never started writing"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        _kill_group(process.pid)
    left = sorted(p.name for p in output.parent.iterdir())
    assert temp.name in left
    assert all(name.startswith(".") and ".tmp-" in name for name in left)  # no output
    # the next run removes the dead run's temporary file and publishes whole outputs
    assert main([*command[3:], "--chunk-rows", "50000"], console=Console(quiet=True)) == 0
    assert sorted(p.name for p in output.parent.iterdir()) == [
        "scores.parquet", "scores.rejects.parquet", "scores.summary.json"]
    assert len(pd.read_parquet(output)) == 300_000


def _kill_group(pid: int) -> None:
    """The dead run's pool workers (they share its session): gone before the test ends."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def test_spark_reads_parts_and_rejects_as_the_local_engine(quick_models, tmp_path) -> None:
    """A folder of CSV parts with bad rows, CSV output: the same scores and rejects."""
    frame, _ = read_raw(load_dataset_spec("heart"), CLEVELAND)
    frame = frame.astype(object)
    frame.loc[3, "age"], frame.loc[150, "cp"], frame.loc[299, "sex"] = 300, 7, None
    source = tmp_path / "parts"
    source.mkdir()
    for index, start in enumerate(range(0, len(frame), 70)):
        frame.iloc[start:start + 70].to_csv(source / f"part-{index:05d}.csv", index=False)
    outputs = {}
    for engine in ("local", "spark"):
        output = tmp_path / engine / "scores.csv"
        extra = ["--master", "local[2]"] if engine == "spark" else ["--workers", "1"]
        assert main(["--model", quick_models["heart"], "--input", str(source), "--output",
                     str(output), "--engine", engine, "--chunk-rows", "50", *extra],
                    console=Console(quiet=True)) == 0
        outputs[engine] = output
    assert outputs["spark"].is_dir()  # Spark's folder of parts
    pd.testing.assert_frame_equal(read_sorted(outputs["spark"]), read_sorted(outputs["local"]),
                                  check_exact=False, rtol=0, atol=1e-12)
    rejects = {engine: read_sorted(path.with_name("scores.rejects.csv"))
               for engine, path in outputs.items()}
    pd.testing.assert_frame_equal(rejects["spark"], rejects["local"])
    assert set(zip(rejects["local"].row_id, rejects["local"].rule, strict=True)) == {
        (3, "less_than_equal"), (150, "literal_error"), (299, "missing")}
