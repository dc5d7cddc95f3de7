"""BentoML service: the champion pipeline of one data set, with adaptive batching.

`TabularService` is the HTTP API (validation, formatting, V2 protocol, metrics). Where the
model runs depends on `batching.mode` in configs/serving.yaml (env BATCHING_MODE):
- `in_process` (default): in each API worker, behind a greedy micro-batcher
  (serving/batcher.py), with load shedding (serving/overload.py);
- `service`: in `ModelRunner`, a separate BentoML service joined by `bentoml.depends`,
  whose batchable API merges concurrent calls (BentoML's adaptive batching).
The served model is chosen by configs/serving.yaml, MODEL_NAME or MODEL_TAG
(serving/config.py).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from functools import partial
from typing import Any

import bentoml
import numpy as np
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from pydantic_core import to_json

from inference.predictor import load_predictor
from serving import listen_sockets, redaction, request_ids, store_api, upstream_fixes
from serving.answers import Formatter
from serving.availability import UNAVAILABLE, ModelUnavailable, answers_503_when_unavailable
from serving.batcher import MicroBatcher
from serving.capture import PredictionCapture
from serving.config import load_serving_config
from serving.drift_monitor import NOTHING_KEPT, DriftMonitor
from serving.fast_path import FastPathMiddleware, FastRoute
from serving.gc_pauses import freeze_loaded_objects, shorten_gil_switch
from serving.guard import RequestGuardMiddleware
from serving.landing import LandingPageMiddleware
from serving.metrics import ValidationCounter, ValidationMetricsMiddleware
from serving.model_store import find_served_model
from serving.openapi import ERROR, NOT_FOUND, OpenAPIPatchMiddleware, openapi_info
from serving.overload import LoadShedMiddleware
from serving.prediction_log import PredictionLog
from serving.readiness import WorkerReadiness
from serving.schema import batch_model, batch_prediction_model, prediction_model, record_model
from serving.scorer import ModelScorer
from serving.shadow import load_shadow
from serving.upstream_fixes import NEVER_RECYCLE
from serving.v2 import (
    InferRequest,
    InferResponse,
    TensorReader,
    decode_infer_request,
    model_metadata,
    validate_records,
)

SETTINGS = load_serving_config()
SERVED = find_served_model(SETTINGS.served_tag)  # fails start-up with what to run if missing
SPEC = SERVED.spec
BATCH = SETTINGS.batching
MODE = SETTINGS.batching.mode
MONITORING = SETTINGS.monitoring
logger = logging.getLogger("tabular.service")
shorten_gil_switch()  # writer threads must not hold the event loop off the GIL
redaction.install()  # rejected feature values stay out of the log
upstream_fixes.install()  # BentoML's request timers are released when the answer starts
listen_sockets.install()  # a listening socket per API worker: the kernel spreads connections

# What scores: "treelite" or "onnx" (the compiled form), or "sklearn" (the pipeline).
ENGINE = SERVED.compiled_engine if SETTINGS.engine == "compiled" else "sklearn"
Record = record_model(SPEC, SERVED.example)
Batch = batch_model(SPEC, Record, SETTINGS.max_batch_records)
Prediction = prediction_model(SPEC)
Predictions = batch_prediction_model(Prediction)
TENSORS = TensorReader(SPEC, SETTINGS.max_batch_records)  # V2 input tensors to records

def load_scorer(model: bentoml.Model) -> ModelScorer:
    scorer = ModelScorer(SERVED, load_predictor(model, SPEC, SETTINGS.engine == "compiled"))
    logger.info("scoring with %s (engine setting: %s)", scorer.engine, SETTINGS.engine)
    return scorer


@bentoml.service(
    name="model_runner",
    workers=SETTINGS.model_workers,
    traffic={"timeout": SETTINGS.timeout_s},
    runner_connection=NEVER_RECYCLE,
)
class ModelRunner:
    """Scores lists of records; concurrent calls are merged into one pipeline call."""

    bento_model = bentoml.models.BentoModel(SERVED.tag)

    def __init__(self) -> None:
        self.scorer = load_scorer(self.bento_model)

    @bentoml.on_startup
    def _freeze(self) -> None:
        freeze_loaded_objects()

    # Lists, not DataFrames: BentoML 1.4.39's batch splitting fails on DataFrames (a
    # tuple batch size; the call hangs until the traffic timeout).
    @bentoml.api(batchable=True, batch_dim=0,
                 max_batch_size=BATCH.max_batch_size, max_latency_ms=BATCH.max_latency_ms)
    def score(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Probabilities (classifiers, spec class order) or predicted values, one row each."""
        return self.scorer(records)


http = FastAPI(title="model info and Open Inference Protocol", docs_url=None, redoc_url=None)


@bentoml.service(
    name="tabular_service",
    workers=SETTINGS.api_workers,
    traffic={"timeout": SETTINGS.timeout_s},
    logging={"access": {"enabled": SETTINGS.access_log}}, tracing=SETTINGS.bentoml_tracing,
    http={"cors": {
        "enabled": bool(SETTINGS.cors_allow_origins),
        "access_control_allow_origins": SETTINGS.cors_allow_origins,
        "access_control_allow_methods": ["GET", "POST"],
        "access_control_allow_headers": ["Content-Type", "Authorization"],
    }},
)
@bentoml.asgi_app(http, path="/")
class TabularService:
    """Predictions for one data set's champion model, validated against its spec."""

    # Declared at class level either way, so that a Bento built from this records the model.
    if MODE == "in_process":
        bento_model = bentoml.models.BentoModel(SERVED.tag)
    else:
        runner = bentoml.depends(ModelRunner)

    def __init__(self) -> None:
        self.formatter = Formatter(SPEC, SERVED.classes, SETTINGS.risk_thresholds,
                                   SERVED.name, SERVED.version)
        self.batcher = None
        if MODE == "in_process":
            scorer = load_scorer(self.bento_model)
            inline = BATCH.inline_max_rows if scorer.engine != "sklearn" else 0
            self.batcher = MicroBatcher(scorer, BATCH.max_batch_size, inline)
        self.capture = None
        if MONITORING.capture.enabled:
            self.capture = PredictionCapture(
                MONITORING.capture_dir, model_name=SERVED.name, model_version=SERVED.version,
                max_bytes=MONITORING.capture.max_bytes,
                backup_count=MONITORING.capture.backup_count,
                exclude=set(MONITORING.capture.exclude_features),
            )
        # Every scored record goes to the prediction store, off the request path.
        self.log = PredictionLog(MONITORING.store, SERVED) if MONITORING.store.enabled else None
        self.drift = DriftMonitor(SERVED, MONITORING, self.log)
        self.shadow = load_shadow(SETTINGS, SERVED)  # shadow.enabled: the challenger, off path
        self._drift_task: asyncio.Task | None = None
        self._store_task: asyncio.Task | None = None
        self.readiness = WorkerReadiness(SETTINGS.api_workers,
                                         bentoml.server_context.worker_index)

    @bentoml.on_startup
    async def _start(self) -> None:
        # One worker runs the periodic check (a child process, off the request path); every
        # worker starts its child before it is ready, since POST /drift/check may land on
        # any of them (a cold child, a process start and Evidently's import, took over 10 s
        # on a busy machine), and started after readiness it took CPU from the first
        # requests.
        if not self.drift.available():
            logger.warning("Evidently is not installed: no drift checks in this process; "
                           "run `python -m serving.drift` where the project is installed")
        elif MONITORING.drift.enabled and not self.drift.keeps_records():
            logger.warning("drift monitoring is on but %s", NOTHING_KEPT)
        elif MONITORING.drift.enabled:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.drift.warm)
            if bentoml.server_context.worker_index in (None, 1):
                self._drift_task = loop.create_task(self.drift.run_forever())
        if self.log is not None:  # writer counts, online metrics, the latest drift run
            self._store_task = self.log.start(self.drift.export_stored)
        frozen = freeze_loaded_objects()
        logger.info("%d loaded objects exempted from garbage collection", frozen)
        self.readiness.mark_started()

    async def __is_ready__(self) -> bool:
        # /readyz: every API worker, not only the one answering (serving/readiness.py).
        return self.readiness.all_started()

    @bentoml.on_shutdown
    async def _stop(self) -> None:
        if self._drift_task is not None:
            self._drift_task.cancel()
        self.drift.close()
        if self.shadow is not None:
            self.shadow.close()  # records its last answers before capture and store close
        if self.capture is not None:
            self.capture.close()  # drains the queue: every accepted record is written
        if self.batcher is not None:
            self.batcher.close()
        if self._store_task is not None:
            self._store_task.cancel()
        if self.log is not None:
            self.log.close()  # writes out every accepted record

    async def _score(self, records: list[dict[str, Any]], endpoint: str) -> list[dict[str, Any]]:
        if self.batcher is not None:
            out = await self.batcher.score(records)
        else:
            # The model service's dispatcher splits calls larger than max_batch_size.
            try:
                out = await self.runner.to_async.score(records)
            except UNAVAILABLE as exc:
                raise ModelUnavailable from exc
        answers = self.formatter.answers(out)
        ids, now = request_ids.record_ids(request_ids.current(), len(answers)), datetime.now(UTC)
        record = partial(self._record, endpoint, ids, now)  # with a shadow: once it has scored
        if self.shadow is None or not self.shadow.submit(records, answers, record):
            record(records, answers)
        return request_ids.stamped(answers, ids, now)

    def _record(self, endpoint: str, ids: list[str], now: datetime,
                records: list[dict[str, Any]], answers: list[dict[str, Any]]) -> None:
        if self.capture is not None:
            self.capture.record(records, answers)
        if self.log is not None:
            self.log.record(endpoint, ids, now, records, answers)

    @bentoml.api(route="/predict", input_spec=Record, output_spec=Prediction)
    @answers_503_when_unavailable
    async def predict(self, **record: Any) -> Any:
        """Score one record (a flat object of raw feature values)."""
        # A valid record is answered by predict_answer (serving/fast_path.py) before this
        # route is reached; the route documents it and answers invalid ones.
        return await self.predict_answer(Record.model_construct(**record))

    @answers_503_when_unavailable
    async def predict_answer(self, record: Any) -> Response:
        # A validated record's fields are its __dict__; the answer, built by our own code in
        # the answer model's field order, is encoded as it is: the bytes the model would
        # encode (tests/serving/test_answers.py), without constructing and dumping it.
        answer = (await self._score([record.__dict__], "predict"))[0]
        return Response(to_json(answer), media_type="application/json")

    @bentoml.api(route="/predict_batch", input_spec=Batch, output_spec=Predictions)
    @answers_503_when_unavailable
    async def predict_batch(self, records: list[Any]) -> Any:
        """Score up to max_batch_records records; answers are in request order."""
        # A validated record's fields are its __dict__ (flat values: model_dump would copy
        # them one by one), and the answers are serialised once, here: per-record models
        # and BentoML's encoding of them were a fifth of a 1,000-row request's CPU.
        answers = await self._score([r.__dict__ for r in records], "predict_batch")
        return Response(to_json({"predictions": answers}), media_type="application/json")

    @http.get("/model_info")
    def model_info(self) -> dict[str, Any]:
        """Model name and version, MLflow links, metrics, task, classes and feature schema."""
        return SERVED.info() | {"engine": ENGINE}

    @http.get("/v2/health/live")
    def v2_live(self) -> dict[str, bool]:
        return {"live": True}

    @http.get("/v2/health/ready", responses={503: {"description": "model not ready", **ERROR}})
    async def v2_ready(self) -> JSONResponse:
        # In process: every API worker has started; else ask the model service too.
        ready = self.readiness.all_started() and (
            self.batcher is not None or await self.runner.is_ready(timeout=1))
        return JSONResponse({"ready": bool(ready)}, status_code=200 if ready else 503)

    @http.get("/v2/models/{name}", responses=NOT_FOUND)
    def v2_model(self, name: str) -> JSONResponse:
        if name != SERVED.name:
            return _unknown_model(name)
        return JSONResponse(model_metadata(SPEC, SERVED.name, SERVED.version))

    @http.get("/v2/models/{name}/ready", responses=NOT_FOUND)
    async def v2_model_ready(self, name: str) -> JSONResponse:
        if name != SERVED.name:
            return _unknown_model(name)
        return await self.v2_ready()

    @http.post("/v2/models/{name}/infer", response_model=InferResponse,
               responses={**NOT_FOUND, 400: {"description": "invalid inputs", **ERROR}})
    async def v2_infer(self, name: str, request: InferRequest) -> Any:
        # For the served name, serving/fast_path.py answers before this route is reached
        # (through v2_answer); the route documents it and answers the other names.
        if name != SERVED.name:
            return _unknown_model(name)
        return await self.v2_answer(request)

    @answers_503_when_unavailable
    async def v2_answer(self, request: InferRequest) -> Response:
        raw, errors = TENSORS(request.inputs)
        records, invalid = validate_records(Record, raw)
        errors += invalid
        if errors:
            return JSONResponse({"error": f"{len(errors)} validation error(s)", "detail": errors},
                                status_code=400)
        answers = await self._score(records, "v2")
        # The V2 answer's `id` echoes the request's; our ids and time go in `parameters`.
        parameters = request_ids.v2_parameters(answers)
        # Serialised once, here, as InferResponse's fields in its order (tests/serving:
        # byte for byte its encoding): returned as a model, FastAPI would validate the
        # answer we just built and encode it again.
        body = to_json({"model_name": SERVED.name, "model_version": SERVED.version,
                        "id": request.id, "parameters": parameters,
                        "outputs": self.formatter.v2_outputs(answers)})
        return Response(body, media_type="application/json")


# History, feedback, online performance and drift (serving/store_api.py), after the class's
# routes: requests are matched in order, and V2 infer is the hot one.
http.include_router(store_api.make_router(SERVED))


def _unknown_model(name: str) -> JSONResponse:
    return JSONResponse({"error": f"unknown model '{name}'; this server serves '{SERVED.name}'"},
                        status_code=404)


SCORING_PATHS = {"/predict", "/predict_batch", f"/v2/models/{SERVED.name}/infer"}
# Outermost of ours: a request over capacity is refused before anything else reads it.
if MODE == "in_process":
    TabularService.add_asgi_middleware(
        LoadShedMiddleware, paths=SCORING_PATHS, max_in_flight=SETTINGS.overload.max_in_flight,
        max_wait_ms=SETTINGS.overload.max_wait_ms)
# Key, content type and size are checked before any body is read or parsed.
API_KEY = SETTINGS.bearer_key()
TabularService.add_asgi_middleware(
    RequestGuardMiddleware, api_key=API_KEY, max_body_bytes=SETTINGS.max_body_bytes,
)
TabularService.add_asgi_middleware(
    OpenAPIPatchMiddleware, api_key=API_KEY is not None, max_body_bytes=SETTINGS.max_body_bytes,
    info=openapi_info(SERVED),
)
# GET / is this model's page (serving/landing.py), never BentoML's Swagger UI, which embeds
# a third-party (Google Tag Manager) frame.
TabularService.add_asgi_middleware(
    LandingPageMiddleware, served=SERVED, api_key=API_KEY is not None,
    max_batch_records=SETTINGS.max_batch_records,
)
# X-Request-ID in, the same (or a new UUID) out; the answers and the store carry it.
TabularService.add_asgi_middleware(request_ids.RequestIdMiddleware, paths=SCORING_PATHS)
# /predict and V2 infer for the served model without the framework's per-request layers
# (serving/fast_path.py); what it does not answer goes on to the routes.
VALIDATION = ValidationCounter(set(SPEC.feature_names))
TabularService.add_asgi_middleware(FastPathMiddleware, routes={
    "/predict": FastRoute(Record.model_validate_json,
                          lambda: upstream_fixes.current_service().predict_answer),
    f"/v2/models/{SERVED.name}/infer": FastRoute(
        decode_infer_request, lambda: upstream_fixes.current_service().v2_answer),
}, finish=partial(upstream_fixes.as_route_answers, service_name="tabular_service"),
    answered=VALIDATION.answered)
# Innermost of ours: the fields named in the routes' 400 answers, counted on /metrics.
TabularService.add_asgi_middleware(ValidationMetricsMiddleware, paths=SCORING_PATHS,
                                   counter=VALIDATION)
