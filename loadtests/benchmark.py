"""Side-by-side serving benchmark on this machine, written to BENCHMARKS.md.

Trains its own champion (configs/benchmark.yaml: data set and candidate) into temporary
MLflow and BentoML stores, then measures in one run: the pipeline in process; the service
with and without adaptive batching; the FastAPI + uvicorn per-request baseline with 1 and
with all-cores workers; a no-op endpoint on the same BentoML stack; the batch endpoint.

    python -m loadtests.benchmark [--seconds 20] [--out BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Coroutine
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console

from loadtests.benchmark_report import Row, keeping_sections, render
from loadtests.loadgen import LoadResult, Request, closed_loop, open_loop
from loadtests.mlserver_peer import VERSION as MLSERVER_VERSION
from loadtests.mlserver_peer import mlserver, v2_request, write_model
from loadtests.server import BIN, ROOT, bentoml_command, serve_command

DEFAULT_CONFIG = ROOT / "configs" / "benchmark.yaml"
CONSOLE = Console()


class BenchmarkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str = "breast_cancer"
    candidate: str = "random_forest"
    users: int = Field(default=64, ge=1)
    seconds: float = Field(default=20, gt=0, le=300)
    warmup_seconds: float = Field(default=3, ge=0)
    inprocess_batch_sizes: list[int] = [1, 8, 64, 512]
    batch_payload_rows: list[int] = [100, 1000]
    batch_users: int = Field(default=4, ge=1)
    open_loop_fraction: float = Field(default=0.5, gt=0, le=1)
    open_loop_seconds: float = Field(default=20, gt=0, le=300)


def tree_cpu_seconds(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def batch_metrics(url: str) -> tuple[float, float]:
    """(rows scored, model calls) from the service's own histogram, in every batching mode."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    sums = counts = 0.0
    for line in text.splitlines():
        if line.startswith("tabular_model_call_rows_sum"):
            sums += float(line.rsplit(" ", 1)[1])
        elif line.startswith("tabular_model_call_rows_count"):
            counts += float(line.rsplit(" ", 1)[1])
    return sums, counts


@dataclass
class Target:
    """One endpoint to measure: a server (its URL and process tree) and its requests."""

    name: str
    url: str
    pid: int
    bodies: list[Any]
    rows: int = 1
    batching: bool = False
    base: bool = False  # the bodies are `Request`s with their own paths (V2), sent to `url`

    @property
    def path(self) -> str:
        if self.base:
            return self.url
        return f"{self.url}/predict" if self.rows == 1 else f"{self.url}/predict_batch"


@dataclass
class _Run:
    result: LoadResult
    wall: float
    server_cpu: float
    own_cpu: float
    rows: float = 0.0
    calls: float = 0.0


def _timed(pid: int, load: Coroutine[Any, Any, LoadResult]) -> _Run:
    """Run `load`; its wall time, the server's CPU seconds and the load generator's."""
    me = psutil.Process()
    cpu0, own0, wall0 = tree_cpu_seconds(pid), sum(me.cpu_times()[:2]), time.perf_counter()
    result = asyncio.run(load)
    return _Run(result, time.perf_counter() - wall0, tree_cpu_seconds(pid) - cpu0,
                sum(me.cpu_times()[:2]) - own0)


def _run(target: Target, clients: int, seconds: float) -> _Run:
    before = batch_metrics(target.url) if target.batching else (0.0, 0.0)
    run = _timed(target.pid, closed_loop(target.path, target.bodies, clients, seconds=seconds,
                                         rows_per_request=target.rows))
    if target.batching:
        after = batch_metrics(target.url)
        run.rows, run.calls = after[0] - before[0], after[1] - before[1]
    return run


def _row(target: Target, runs: list[_Run]) -> Row:
    wall = sum(r.wall for r in runs)
    calls = sum(r.calls for r in runs)
    return Row(target.name, LoadResult.merged([r.result for r in runs]),
               sum(r.server_cpu for r in runs) / wall, sum(r.own_cpu for r in runs) / wall,
               batch_size=sum(r.rows for r in runs) / calls if calls else None)


def measure(name: str, url: str, pid: int, bodies: list[Any], clients: int, seconds: float,
            warmup: float, rows: int = 1, batching: bool = False, base: bool = False) -> Row:
    """`base`: the bodies are `Request`s with their own paths (V2), sent to the bare URL."""
    target = Target(name, url, pid, bodies, rows, batching, base)
    CONSOLE.print(f"  {name}: {clients} clients x {seconds:.0f}s", highlight=False)
    if warmup:
        asyncio.run(closed_loop(target.path, bodies, clients, seconds=warmup))
    return _row(target, [_run(target, clients, seconds)])


def measure_in_turns(targets: list[Target], clients: int, seconds: float,
                     warmup: float) -> list[Row]:
    """Servers up at once, measured in turn, forwards then backwards (A B C C B A), each
    turn half of `seconds`: this machine's speed drifts by a fifth within minutes, and a
    ratio of two rows measured minutes apart measured the drift as much as the servers."""
    CONSOLE.print(f"  {' | '.join(t.name for t in targets)}: {clients} clients x "
                  f"{seconds:.0f}s each, in turns", highlight=False)
    runs: dict[str, list[_Run]] = {t.name: [] for t in targets}
    for target in targets:
        if warmup:
            asyncio.run(closed_loop(target.path, target.bodies, clients, seconds=warmup))
    for target in [*targets, *reversed(targets)]:
        runs[target.name].append(_run(target, clients, seconds / 2))
    return [_row(t, runs[t.name]) for t in targets]


@contextmanager
def bentoml_server(env: dict[str, str], log: Path, target: str | None = None):
    with serve_command(bentoml_command(target), env, log) as (url, process):
        yield url, process.pid


def beside(home: Path) -> Path:
    """A BentoML home sharing `home`'s model store: a server started in the same home wipes
    the running one's Prometheus directory (BentoML cleans it at start)."""
    other = home / "bentoml-beside"
    other.mkdir(exist_ok=True)
    if not (other / "models").exists():
        (other / "models").symlink_to(home / "bentoml" / "models", target_is_directory=True)
    return other


def train_champion(config: BenchmarkConfig, home: Path) -> str:
    """A champion with only the configured candidate, in temporary stores; returns its tag."""
    os.environ["BENTOML_HOME"] = str(home / "bentoml")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
    from contract.spec import load_dataset_spec
    from training.config import load_training_config
    from training.data import load_dataset
    from training.train import run_training

    training = load_training_config()
    spec = load_dataset_spec(config.dataset)
    candidates = [c for c in training.candidates[spec.task] if c.name == config.candidate]
    if not candidates:
        raise SystemExit(f"no candidate '{config.candidate}' for task {spec.task}")
    training = training.model_copy(update={"candidates": training.candidates | {
        spec.task: candidates}})
    outcome = run_training(load_dataset(spec), training, console=Console(quiet=True))
    return outcome.registration.bento_tag or ""


def inprocess(tag: str, batch_sizes: list[int], records: list[dict]) -> list[Row]:
    """One model call on validated records, as the service makes it: the pipeline, then the
    compiled form (records to answers, the feature plan included)."""
    import bentoml

    from inference.predictor import load_predictor
    from serving.model_store import find_served_model

    served = find_served_model(tag)
    model = bentoml.models.get(tag)
    rows = []
    for compiled in (False, True):
        predictor = load_predictor(model, served.spec, prefer_compiled=compiled)
        for size in batch_sizes:
            batch = (records * (size // len(records) + 1))[:size]
            predictor.predict(batch)
            calls, start = 0, time.perf_counter()
            while time.perf_counter() - start < 3 or calls < 5:
                predictor.predict(batch)
                calls += 1
            per_call = (time.perf_counter() - start) / calls
            rows.append(Row(f"in process, {predictor.engine}, batch {size}",
                            rows_per_s=size / per_call,
                            note=f"{per_call * 1000:.3f} ms per call"))
    return rows


def v2_bodies(tag: str, records: list[dict]) -> list[Request]:
    """The same one-row Open Inference Protocol requests for this service and MLServer."""
    from serving.model_store import find_served_model

    served = find_served_model(tag)
    path = f"/v2/models/{served.name}/infer"
    return [Request(json.dumps(v2_request(served.spec, r)).encode(), path=path)
            for r in records]


def mlserver_row(tag: str, home: Path, bodies: list[Request], config: BenchmarkConfig,
                 workers: int) -> Row:
    import bentoml

    pipeline = bentoml.sklearn.load_model(tag)
    folder = write_model(home / "mlserver", pipeline, tag.split(":")[0], workers)
    with mlserver(folder, home / "mlserver.log") as (url, pid):
        return measure(f"MLServer {MLSERVER_VERSION} (sklearn runtime, adaptive batching, "
                       f"{workers} workers), V2 infer", url, pid, bodies, config.users,
                       config.seconds, config.warmup_seconds, base=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--seconds", type=float, help="override the per-measurement seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    raw = yaml.safe_load(args.config.read_text())
    if args.seconds:
        raw["seconds"] = args.seconds
    config = BenchmarkConfig.model_validate(raw)
    started = time.perf_counter()
    cores = os.cpu_count() or 1
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    with tempfile.TemporaryDirectory(prefix="benchmark-") as tmp:
        home = Path(tmp)
        CONSOLE.print(f"[bold]training[/] {config.dataset} ({config.candidate}) into {home}")
        tag = train_champion(config, home)
        from loadtests.payloads import reference_records

        _, records = reference_records(tag)
        # The service as configured, with its capture and prediction store in this run's
        # temporary directory: a store grown by earlier runs would weigh on this one.
        env = {"BENTOML_HOME": os.environ["BENTOML_HOME"], "MODEL_TAG": tag,
               "BENTOML_DO_NOT_TRACK": "true", "CAPTURE_DIR": str(home / "monitoring"),
               "PREDICTION_STORE_URL": f"sqlite:///{home / 'predictions.db'}"}
        from serving.config import load_serving_config

        workers = load_serving_config().api_workers
        rows: list[Row] = []

        CONSOLE.print("[bold]in process[/]")
        rows += inprocess(tag, config.inprocess_batch_sizes, records)

        v2 = v2_bodies(tag, records)
        CONSOLE.print("[bold]the service as configured: compiled model, in-process batching,"
                      " beside the no-op endpoint on the same stack[/]")
        with bentoml_server(env | {"BATCHING_MODE": "in_process"}, home / "inproc.log") as (
                url, pid), bentoml_server(env | {"BENTOML_HOME": str(beside(home))},
                                          home / "noop.log",
                                          "loadtests.noop_service:NoopService") as (
                noop_url, noop_pid):
            noop, batching, v2_row, noop_api = measure_in_turns([
                Target(f"no-op endpoint (HTTP ceiling), same path as /predict, {workers} "
                       "worker(s)", noop_url, noop_pid, records),
                Target(f"service, in-process batching, {workers} API worker(s), compiled, "
                       "/predict", url, pid, records, batching=True),
                Target(f"service, in-process batching, {workers} API worker(s), compiled, "
                       "V2 infer", url, pid, v2, batching=True, base=True),
                Target(f"no-op endpoint through BentoML's API route, {workers} worker(s)",
                       f"{noop_url}/predict_api", noop_pid, records, base=True)],
                config.users, config.seconds, config.warmup_seconds)
            rows += [batching, v2_row]
            rate = config.open_loop_fraction * batching.result.throughput
            CONSOLE.print(f"  open loop at {rate:.0f} req/s for {config.open_loop_seconds:.0f}s")
            # A pool of kept-alive connections, as an ingress or wrk2's -c holds: without a
            # cap every request that finds no idle connection opens one, and at 2,500 req/s
            # the connection storm (not the service) collapsed the run (17:46 UTC: 10,889
            # connection errors, 23,917 sheds). Waiting for a connection counts as latency.
            # Its CPU too: a request costs the server and the generator more at this rate
            # than at the closed loop's (fewer requests share each wake-up and model call).
            opened = _timed(pid, open_loop(f"{url}/predict", records, rate,
                                           config.open_loop_seconds,
                                           connections=config.users))
            rows.append(Row(f"service, open loop at {rate:.0f} req/s "
                            f"({config.open_loop_fraction:.0%} of max)", opened.result,
                            opened.server_cpu / opened.wall, opened.own_cpu / opened.wall))
            for size in config.batch_payload_rows:
                bodies = [{"records": (records * (size // len(records) + 1))[:size]}]
                rows.append(measure(f"batch endpoint, {size} rows", url, pid, bodies,
                                    config.batch_users, config.seconds, config.warmup_seconds,
                                    rows=size, batching=True))

        CONSOLE.print("[bold]the service with the scikit-learn pipeline (engine: sklearn)[/]")
        with bentoml_server(env | {"MODEL_ENGINE": "sklearn"}, home / "sklearn.log") as (
                url, pid):
            rows.append(measure(f"service, in-process batching, {workers} API worker(s), "
                                "scikit-learn, /predict", url, pid, records, config.users,
                                config.seconds, config.warmup_seconds, batching=True))
            rows.append(measure(f"service, in-process batching, {workers} API worker(s), "
                                "scikit-learn, V2 infer", url, pid, v2, config.users,
                                config.seconds, config.warmup_seconds, batching=True,
                                base=True))

        CONSOLE.print("[bold]the peer: Seldon MLServer, same pipeline, same V2 requests[/]")
        rows.append(mlserver_row(tag, home, v2, config, cores))

        CONSOLE.print("[bold]the service, BentoML adaptive batching in a model service[/]")
        with bentoml_server(env | {"BATCHING_MODE": "service"}, home / "bentoml.log") as (
                url, pid):
            rows.append(measure(f"service, BentoML adaptive batching (model service), "
                                f"{workers} API worker(s)", url, pid, records, config.users,
                                config.seconds, config.warmup_seconds, batching=True))

        for count in sorted({1, cores}):
            CONSOLE.print(f"[bold]FastAPI + uvicorn baseline, {count} worker(s)[/]")

            def uvicorn(port: int, count: int = count) -> list[str]:
                return [str(BIN / "uvicorn"), "loadtests.baseline_app:app", "--host",
                        "127.0.0.1", "--port", str(port), "--workers", str(count),
                        "--no-access-log", "--log-level", "warning"]

            with serve_command(uvicorn, env, home / f"fastapi{count}.log") as (url, proc):
                rows.append(measure(f"FastAPI + uvicorn per request, {count} worker(s)", url,
                                    proc.pid, records, config.users, config.seconds,
                                    config.warmup_seconds))

        rows += [noop, noop_api]  # measured beside /predict, listed last as the ceilings

    elapsed = time.perf_counter() - started
    report = render(config, rows, tag, elapsed, cores)
    previous = args.out.read_text() if args.out.is_file() else ""
    args.out.write_text(keeping_sections(report, previous))  # e.g. the store's cost
    results = ROOT / "reports" / "benchmark.json"
    results.parent.mkdir(exist_ok=True)
    results.write_text(json.dumps([{"name": r.name, **(r.result.summary() if r.result else {}),
                                    "rows_per_s": r.rows_per_s, "server_cpu": r.server_cpu,
                                    "loadgen_cpu": r.loadgen_cpu, "batch_size": r.batch_size}
                                   for r in rows], indent=2))
    CONSOLE.print(report)
    CONSOLE.print(f"wrote {args.out} and {results} in {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
