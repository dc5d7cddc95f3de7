"""The endpoints that read and write the prediction store: history, feedback, online
performance, and the fleet-wide drift run. FastAPI routes on the service's `http` app,
behind the API key like the prediction endpoints (serving/guard.py).

Every handler is a plain `def`: FastAPI runs it in its thread pool, so a slow or stopped
database holds a thread, never the event loop that answers predictions. A database that is
down is a 503 with the reason, not a 500.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import bentoml
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, create_model
from sqlalchemy.exc import SQLAlchemyError

from contract.spec import canonical_value
from serving.drift_monitor import NOTHING_KEPT
from serving.model_store import ServedModel
from serving.openapi import ERROR, NOT_FOUND
from store import Feedback, InvalidCursor
from store.feedback import MAX_FEEDBACK
from store.history import MAX_PAGE

T = TypeVar("T")
UNAVAILABLE = {503: {"description": "prediction store disabled or unavailable", **ERROR}}
BAD_REQUEST = {400: {"description": "invalid parameters or feedback", **ERROR}}
Service = Annotated[Any, Depends(bentoml.get_current_service)]


def feedback_models(served: ServedModel) -> tuple[type[BaseModel], type[BaseModel]]:
    """The feedback bodies of this model: `actual` is one of its classes (the OpenAPI
    document lists them) or, for a regressor, a number."""
    # Validated by check_actual (a 400 naming the item), so the document carries the rule
    # as a schema constraint only.
    rule = ({"enum": served.classes} if served.spec.is_classifier and served.classes
            else {"type": "number"})
    item = create_model(
        "FeedbackItem", __config__=ConfigDict(extra="forbid"),
        request_id=(str, Field(min_length=1, max_length=128,
                               description="the answer's request_id (or X-Request-ID)")),
        actual=(StrictStr | StrictInt | StrictFloat, Field(
            description="the true class (one of the model's classes) or value (regressors)",
            json_schema_extra=rule)))
    batch = create_model(
        "FeedbackBatch", __config__=ConfigDict(extra="forbid"),
        feedback=(list[item], Field(min_length=1, max_length=MAX_FEEDBACK)))
    return item, batch


def known_query(*names: str) -> Any:
    """Refuses query parameters the route does not have (a misspelt filter would otherwise
    be ignored silently and answer everything)."""
    def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - set(names))
        if unknown:
            raise HTTPException(400, f"unknown query parameter(s) {unknown}; this route "
                                     f"accepts {sorted(names)}")
    return Depends(check)


def _error(status: int, error: str, detail: Any = None) -> JSONResponse:
    body = {"error": error} if detail is None else {"error": error, "detail": detail}
    return JSONResponse(body, status_code=status)


def _with_store(service: Any, action: Callable[[Any], T]) -> T | JSONResponse:
    """`action(log)`, or a 503 when the store is disabled or the database does not answer."""
    if service.log is None:
        return _error(503, "the prediction store is disabled (monitoring.store.enabled)")
    try:
        return action(service.log)
    except SQLAlchemyError as exc:
        return _error(503, f"prediction store unavailable ({type(exc).__name__}); retry later")


# ISO 8601 only: pydantic's datetime would also take a number (0.5 as a Unix time).
TIME = Query(description="ISO 8601 date-time (UTC if no zone)",
             json_schema_extra={"format": "date-time"})


def _moment(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return _utc(datetime.fromisoformat(text))
    except ValueError:
        raise ValueError(f"{name}: '{text[:40]}' is not an ISO 8601 date-time, e.g. "
                         "2026-11-23T10:00:00Z") from None


def _utc(moment: datetime | None) -> datetime | None:
    # A time without a zone is taken as UTC, the zone every stored timestamp is in.
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def check_actual(served: ServedModel, actual: Any) -> tuple[Any, str | None]:
    """The value to store (a class spelled as the model's classes), or why it is refused."""
    if served.classes:
        by_key = {canonical_value(c): c for c in served.classes}
        label = by_key.get(canonical_value(actual))
        if label is None:
            return None, f"not one of the model's classes {served.classes}"
        return label, None
    if isinstance(actual, str) or not math.isfinite(float(actual)):
        return None, "a regressor's actual value must be a finite number"
    return float(actual), None


def make_router(served: ServedModel) -> APIRouter:
    router = APIRouter()

    @router.get("/predictions", responses={**BAD_REQUEST, **UNAVAILABLE}, dependencies=[
        known_query("since", "until", "model_version", "limit", "cursor")])
    def predictions(
        service: Service, since: Annotated[str | None, TIME] = None,
        until: Annotated[str | None, TIME] = None,
        model_version: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100, cursor: str | None = None,
    ) -> Any:
        """Stored predictions of this model, newest first: features, answer, version, time
        and feedback. `since` <= time < `until` (ISO 8601, UTC if no zone); page on with
        `cursor` = the previous page's `next_cursor` (null on the last page)."""
        try:
            start, end = _moment("since", since), _moment("until", until)
        except ValueError as exc:
            return _error(400, str(exc))

        def page(log: Any) -> Any:
            try:  # empty strings: the parameter left blank, as absent
                return log.store.history(model_name=served.name,
                                         model_version=model_version or None,
                                         since=start, until=end, limit=limit,
                                         cursor=cursor or None).to_dict()
            except InvalidCursor as exc:
                return _error(400, str(exc))
        return _with_store(service, page)

    @router.get("/predictions/{request_id}", responses={**NOT_FOUND, **UNAVAILABLE})
    def prediction(service: Service, request_id: str) -> Any:
        """One stored prediction by its request id, with its feedback if any."""
        found = _with_store(service, lambda log: log.store.get(request_id))
        if found is None:
            return _error(404, f"no stored prediction '{request_id}' (predictions reach the "
                          "store within about flush_interval_s of their answer)")
        return found

    item_model, batch_model = feedback_models(served)

    def feedback(service: Service, body: Any) -> Any:
        """Ground truth for stored predictions: one `{"request_id", "actual"}` or
        `{"feedback": [...]}` (up to 1,000). Feedback sent again replaces the earlier one;
        unknown request ids are reported per item."""
        single = isinstance(body, item_model)
        items = [body] if single else body.feedback
        checked, errors = [], []
        for index, item in enumerate(items):
            value, problem = check_actual(served, item.actual)
            if problem is not None:
                loc = ["actual"] if single else ["feedback", index, "actual"]
                errors.append({"loc": loc, "type": "invalid_actual", "msg": problem})
            checked.append(Feedback(item.request_id, value))
        if errors:
            return _error(400, f"{len(errors)} invalid feedback item(s)", errors)
        results = _with_store(service, lambda log: log.store.feedback(checked))
        if isinstance(results, JSONResponse):
            return results
        if single:
            answer = results[0].to_dict()
            return JSONResponse(answer, status_code=404 if answer["status"] ==
                                "unknown_request_id" else 200)
        counts = {status: sum(r.status == status for r in results)
                  for status in ("stored", "replaced", "unknown_request_id")}
        return {"results": [r.to_dict() for r in results], **counts}

    # The body's type is this model's, made above: set after definition, since the module's
    # postponed annotations cannot name a local class.
    feedback.__annotations__["body"] = item_model | batch_model
    router.post("/feedback", responses={**BAD_REQUEST, **NOT_FOUND, **UNAVAILABLE})(feedback)

    @router.get("/performance", responses={**BAD_REQUEST, **UNAVAILABLE},
                dependencies=[known_query("model_version", "window")])
    def performance(service: Service, model_version: str | None = None,
                    window: Annotated[int | None, Query(ge=1, le=100_000)] = None) -> Any:
        """Online metrics over the newest `window` labelled predictions of each model
        version, next to the served version's hold-out metrics from training."""
        return _with_store(service, lambda log: log.performance(window, model_version or None))

    @router.get("/drift", responses={**NOT_FOUND, **UNAVAILABLE})
    def drift_summary(service: Service) -> Any:
        """The latest drift check of the served version (from any replica or the drift
        CronJob): share of drifted features and per-feature statistics."""
        try:
            summary = service.drift.latest()
        except SQLAlchemyError as exc:
            return _error(503, f"prediction store unavailable ({type(exc).__name__})")
        if summary is None:
            return _error(404, "no drift check has run yet", service.drift.status())
        return JSONResponse(summary)

    @router.post("/drift/check", responses={
        409: {"description": "too few stored records", **ERROR},
        501: {"description": "Evidently not installed", **ERROR}})
    async def drift_check(service: Service) -> JSONResponse:
        """Run a drift check now instead of waiting for the next periodic one."""
        if not service.drift.keeps_records():
            return _error(409, NOTHING_KEPT)
        if not service.drift.available():
            return _error(501, "Evidently is not installed in this image; run `python -m "
                          "serving.drift` (the drift CronJob) against the store instead")
        loop = asyncio.get_running_loop()
        summary = await loop.run_in_executor(None, service.drift.check)
        if summary is None:
            return _error(409, "not enough stored records", service.drift.status())
        return JSONResponse(summary.to_dict())

    @router.get("/drift/report", response_class=HTMLResponse,
                responses={**NOT_FOUND, **UNAVAILABLE})
    def drift_report(service: Service) -> Any:
        """The latest drift check's Evidently HTML report."""
        try:
            html = service.drift.report_html()
        except SQLAlchemyError as exc:
            return _error(503, f"prediction store unavailable ({type(exc).__name__})")
        if html is None:
            return _error(404, "no drift report yet")
        return HTMLResponse(html)

    return router
