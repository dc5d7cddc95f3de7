"""The common tutorial design, as a benchmark baseline: FastAPI + uvicorn, the pipeline
loaded in every worker, one predict_proba call per request.

    MODEL_TAG=NAME:latest uvicorn loadtests.baseline_app:app --workers 2
"""

from typing import Any

import bentoml
from fastapi import FastAPI

from inference.predictor import records_to_frame
from serving.config import load_serving_config
from serving.model_store import find_served_model
from serving.schema import record_model

SERVED = find_served_model(load_serving_config().served_tag)
PIPELINE = bentoml.sklearn.load_model(SERVED.tag)
Record = record_model(SERVED.spec)
app = FastAPI()


@app.get("/readyz")
def ready() -> dict[str, bool]:
    return {"ready": True}


@app.post("/predict")
def predict(record: Record) -> dict[str, Any]:  # type: ignore[valid-type]
    frame = records_to_frame(SERVED.spec, [record.model_dump()])  # type: ignore[attr-defined]
    if not SERVED.spec.is_classifier:
        return {"prediction": float(PIPELINE.predict(frame)[0])}
    proba = PIPELINE.predict_proba(frame)[0]
    classes = list(PIPELINE.classes_)
    return {"prediction": classes[int(proba.argmax())],
            "probabilities": dict(zip(classes, map(float, proba), strict=True))}
