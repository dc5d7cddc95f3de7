"""The shadow challenger: a second model scored on the champion's traffic, off the request path.

Answers come only from the champion. After a request's champion answers are built, the
service hands its records and answers to `Shadow.submit`, which only appends them to a
bounded queue (a lock and a deque: microseconds). One thread of its own takes everything
queued, scores it with the challenger in one call (so the challenger sees batches as big as
the champion's), compares, counts, and calls the request's recorder (capture and prediction
store) with each answer carrying the challenger's under `shadow`. When the queue is full the
records are dropped for the shadow (counted; the caller records the champion's answers
alone) instead of queueing without bound, so a slow or stuck challenger can never hold the
champion's memory or time.

Which challenger: `shadow.model_tag` (env SHADOW_MODEL_TAG), else the BentoML twin of the
served model's name labelled `mlflow_alias: challenger` (training/lifecycle.py keeps that
label on exactly the current challenger's twin), so the service needs no MLflow at run time.
Only `batching.mode: in_process` has a shadow (serving/config.py refuses it otherwise).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import bentoml
from prometheus_client import Counter, Gauge, Histogram

from inference.predictor import Predictor, load_predictor
from serving.answers import Formatter
from serving.config import ServingConfig
from serving.model_store import ServedModel, find_served_model

logger = logging.getLogger("tabular.shadow")
CHALLENGER_LABEL = ("mlflow_alias", "challenger")
LABELS = ["model_name", "model_version", "challenger_version"]
# Before each challenger call the shadow thread lets requests gather this long: nobody waits
# for its answers, and fewer, larger calls cost the champion's cores less (a call costs
# about the same for 3 rows as for 30).
GATHER_S = 0.02

SHADOW_ROWS = Counter("tabular_shadow_rows_total",
                      "Records the shadow challenger scored", LABELS)
SHADOW_AGREED = Counter(
    "tabular_shadow_agreements_total",
    "Records where the challenger agreed with the champion (classifiers: same label; "
    "regressors: within shadow.regression_rtol)", LABELS)
# Per worker, its running ratio; the exact rate over all workers is the ratio of the counters.
SHADOW_AGREEMENT = Gauge("tabular_shadow_agreement_rate",
                         "Share of shadow-scored records where challenger and champion agree",
                         LABELS, multiprocess_mode="mostrecent")
SHADOW_DROPPED = Counter("tabular_shadow_dropped_rows_total",
                         "Records not shadow-scored because the shadow queue was full", LABELS)
SHADOW_ERRORS = Counter("tabular_shadow_errors_total",
                        "Records whose challenger call raised", LABELS)
SHADOW_CALL_SECONDS = Histogram(
    "tabular_shadow_call_seconds", "Challenger model call time (one call scores a batch)",
    LABELS, buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
# Thread CPU (the compiled model scores on one thread): what the shadow takes from the cores.
SHADOW_CPU = Counter("tabular_shadow_cpu_seconds_total",
                     "CPU time of the shadow thread's challenger calls and comparisons",
                     LABELS)
SHADOW_LAG_SECONDS = Histogram(
    "tabular_shadow_lag_seconds", "From the champion's answer to the challenger's",
    LABELS, buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0))

Recorder = Callable[[list[dict[str, Any]], list[dict[str, Any]]], None]
Job = tuple[list[dict[str, Any]], list[dict[str, Any]], float, Recorder]


def challenger_tag(settings: ServingConfig, served: ServedModel) -> str | None:
    """The configured tag, else the newest challenger-labelled twin of the served name."""
    if settings.shadow.model_tag:
        return settings.shadow.model_tag
    key, value = CHALLENGER_LABEL
    found = [m for m in bentoml.models.list(served.name)
             if m.info.labels.get(key) == value and str(m.tag) != served.tag]
    return str(max(found, key=lambda m: m.info.creation_time).tag) if found else None


def compatible(champion: ServedModel, challenger: ServedModel) -> str | None:
    """Why the challenger cannot shadow the champion, or None if it can."""
    if challenger.spec.feature_names != champion.spec.feature_names:
        return "its features differ from the champion's"
    if challenger.spec.task != champion.spec.task or challenger.classes != champion.classes:
        return "its task or classes differ from the champion's"
    return None


class Shadow:
    def __init__(self, champion: ServedModel, challenger: ServedModel, predictor: Predictor,
                 formatter: Formatter, *, max_queue_rows: int, rtol: float) -> None:
        self.challenger = challenger
        self.predictor = predictor
        self.formatter = formatter
        self.classifier = champion.spec.is_classifier
        if self.classifier:  # columns in the spec's class order, as serving/scorer.py does
            order = list(predictor.classes or [])
            self.columns = [order.index(c) for c in challenger.classes]
        self.max_queue_rows = max_queue_rows
        self.rtol = rtol
        labels = {"model_name": champion.name, "model_version": champion.version,
                  "challenger_version": challenger.version}
        self.rows, self.agreed = SHADOW_ROWS.labels(**labels), SHADOW_AGREED.labels(**labels)
        self.rate = SHADOW_AGREEMENT.labels(**labels)
        self.dropped, self.errors = SHADOW_DROPPED.labels(**labels), SHADOW_ERRORS.labels(**labels)
        self.call_seconds = SHADOW_CALL_SECONDS.labels(**labels)
        self.lag = SHADOW_LAG_SECONDS.labels(**labels)
        self.cpu = SHADOW_CPU.labels(**labels)
        self._scored = self._agreements = 0  # this worker's totals, for the gauge
        self._lock = threading.Lock()
        self._jobs: deque[Job] = deque()
        self._queued_rows = 0
        self._draining = False
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")

    def submit(self, records: list[dict[str, Any]], answers: list[dict[str, Any]],
               record: Recorder) -> bool:
        """Queue the champion's answered records for the challenger, who calls `record` with
        both answers; False if dropped (the caller then records the champion's alone)."""
        with self._lock:
            accept = not self._closed and self._queued_rows + len(records) <= self.max_queue_rows
            if accept:
                self._jobs.append((records, answers, time.perf_counter(), record))
                self._queued_rows += len(records)
                start, self._draining = not self._draining, True
        if not accept:
            self.dropped.inc(len(records))
            return False
        if start:
            self._executor.submit(self._drain)
        return True

    def _drain(self) -> None:
        """In the shadow thread: score everything queued, until the queue is empty."""
        while True:
            time.sleep(GATHER_S)
            with self._lock:
                if not self._jobs:
                    self._draining = False
                    return
                jobs = list(self._jobs)
                self._jobs.clear()
                self._queued_rows = 0
            records = [r for batch, *_ in jobs for r in batch]
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                out = self.predictor.predict(records)
            except Exception:  # the shadow must never stop: count, log, record champion only
                logger.exception("shadow challenger %s failed", self.challenger.tag)
                for batch, answers, _, record in jobs:
                    self.errors.inc(len(batch))
                    self._record(record, batch, answers)
                continue
            try:
                recordings = self._compare(jobs, out[:, self.columns] if self.classifier
                                           else out, start)
            except Exception:  # a bug here must not end the drain (it would never restart)
                logger.exception("shadow comparison failed")
                recordings = []
            # Recording is not counted: without a shadow the request path does the same.
            self.cpu.inc(time.thread_time() - cpu)
            for record, batch, both in recordings:
                self._record(record, batch, both)

    def _compare(self, jobs: list[Job], out: Any,
                 start: float) -> list[tuple[Recorder, list[dict[str, Any]], list[dict[str, Any]]]]:
        """Count agreements; each job's recorder with the champion's answers plus `shadow`."""
        done = time.perf_counter()
        recordings = []
        self.call_seconds.observe(done - start)
        at = 0
        for batch, answers, queued, record in jobs:
            rows = out[at:at + len(batch)]
            at += len(batch)
            shadows = self.formatter.answers(rows)
            agreed = sum(self.agree(a, s) for a, s in zip(answers, shadows, strict=True))
            self.rows.inc(len(batch))
            self.agreed.inc(agreed)
            self._scored += len(batch)
            self._agreements += agreed
            self.lag.observe(done - queued)
            # Copies: the champion's answer dicts belong to the response already sent.
            both = [a | {"shadow": s} for a, s in zip(answers, shadows, strict=True)]
            recordings.append((record, batch, both))
        self.rate.set(self._agreements / self._scored)
        return recordings

    def agree(self, champion: dict[str, Any], challenger: dict[str, Any]) -> bool:
        if self.classifier:
            return bool(champion["prediction"] == challenger["prediction"])
        expected = float(champion["prediction"])
        return bool(abs(float(challenger["prediction"]) - expected) <= self.rtol * abs(expected))

    @staticmethod
    def _record(record: Recorder, records: list[dict[str, Any]],
                answers: list[dict[str, Any]]) -> None:
        try:
            record(records, answers)
        except Exception:  # a recorder's failure must not stop the shadow thread
            logger.exception("recording shadow answers failed")

    def close(self) -> None:
        """Stop accepting, then score and record what was accepted (before capture closes)."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True)


def load_shadow(settings: ServingConfig, champion: ServedModel) -> Shadow | None:
    """The configured challenger, loaded; None when shadow is off or (automatic choice) the
    store has no challenger for this model. An explicit tag that is missing fails start-up."""
    if not settings.shadow.enabled:
        return None
    tag = challenger_tag(settings, champion)
    if tag is None:
        logger.warning("shadow.enabled, but the store has no twin of %s labelled "
                       "mlflow_alias=challenger: serving without a shadow", champion.name)
        return None
    challenger = find_served_model(tag)
    if (problem := compatible(champion, challenger)) is not None:
        raise ValueError(f"shadow challenger {tag} cannot shadow {champion.tag}: {problem}")
    predictor = load_predictor(bentoml.models.get(tag), challenger.spec,
                               prefer_compiled=settings.engine == "compiled")
    formatter = Formatter(challenger.spec, challenger.classes, settings.risk_thresholds,
                          challenger.name, challenger.version)
    logger.info("shadow challenger %s (%s) beside champion %s", tag, predictor.engine,
                champion.tag)
    return Shadow(champion, challenger, predictor, formatter,
                  max_queue_rows=settings.shadow.max_queue_rows,
                  rtol=settings.shadow.regression_rtol)
