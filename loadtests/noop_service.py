"""The HTTP ceiling of the serving stack: the same BentoML server and the same generated
record model as service.py, but no model call.

    MODEL_TAG=NAME:latest bentoml serve loadtests.noop_service:NoopService
"""

import os
from typing import Any

import bentoml

from serving.model_store import find_served_model
from serving.schema import record_model

SERVED = find_served_model(os.environ.get("MODEL_TAG", "breast-cancer-classifier:latest"))
Record = record_model(SERVED.spec)


@bentoml.service(name="noop_service", workers=1)
class NoopService:
    @bentoml.api(route="/predict", input_spec=Record)
    async def predict(self, **record: Any) -> dict[str, Any]:
        return {"prediction": None, "model_name": SERVED.name, "fields": len(record)}
