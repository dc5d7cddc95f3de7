"""The HTTP ceiling of the serving stack: the same BentoML server and the same generated
record model as service.py, but no model call.

`POST /predict` goes the way service.py's does: the fast path (serving/fast_path.py)
validates the record straight from JSON and answers with the encoded answer model.
`POST /predict_api` is the same through BentoML's own endpoint machinery (what /predict
went through before the fast path), for what that machinery costs.

    MODEL_TAG=NAME:latest bentoml serve loadtests.noop_service:NoopService
"""

from functools import partial
from typing import Any

import bentoml
from starlette.responses import Response

from serving import listen_sockets, upstream_fixes
from serving.config import load_serving_config
from serving.fast_path import FastPathMiddleware, FastRoute
from serving.model_store import find_served_model
from serving.schema import prediction_model, record_model

SETTINGS = load_serving_config()
listen_sockets.install()  # as service.py: a listening socket per worker
SERVED = find_served_model(SETTINGS.served_tag)
Record = record_model(SERVED.spec)
Prediction = prediction_model(SERVED.spec)
# A fixed answer of the real shape: the same response model and serialisation as service.py.
ANSWER = {"model_name": SERVED.name, "model_version": SERVED.version}
if SERVED.spec.is_classifier:
    ANSWER |= {"prediction": SERVED.classes[0],
               "probabilities": dict.fromkeys(SERVED.classes, 1 / len(SERVED.classes))}
else:
    ANSWER["prediction"] = 0.0
if SERVED.spec.task == "binary":
    ANSWER |= {"probability": 0.5, "risk_level": "medium"}


# The same server settings as service.py's that bear on the cost of a request.
@bentoml.service(name="noop_service", workers=SETTINGS.api_workers,
                 logging={"access": {"enabled": SETTINGS.access_log}},
                 tracing=SETTINGS.bentoml_tracing)
class NoopService:
    @bentoml.api(route="/predict", input_spec=Record, output_spec=Prediction)
    async def predict(self, **record: Any) -> Any:
        return Prediction.model_construct(**ANSWER)  # invalid records only (the route's 400)

    @bentoml.api(route="/predict_api", input_spec=Record, output_spec=Prediction)
    async def predict_api(self, **record: Any) -> Any:
        return Prediction.model_construct(**ANSWER)


async def answer(record: Any) -> Response:
    return Response(Prediction.model_construct(**ANSWER).model_dump_json(),
                    media_type="application/json")


NoopService.add_asgi_middleware(FastPathMiddleware, routes={
    "/predict": FastRoute(Record.model_validate_json, lambda: answer)},
    finish=partial(upstream_fixes.as_route_answers, service_name="noop_service"))
