"""Models for the fast scoring tests: small pipelines fitted in-process (well under a second)
and saved in the session's BentoML store as the training export saves them (pipeline,
metadata with the spec and classes). The slow tests use the trained champions
(tests/servers.py's trained_store) instead. Names of their own, so that NAME:latest of a
trained champion is never one of these."""

from __future__ import annotations

import bentoml
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline

from contract.spec import load_dataset_spec
from tests.conftest import CLEVELAND
from training.data import load_dataset
from training.pipelines import build_preprocessor

QUICK = {"heart": "scoring-test-heart", "iris": "scoring-test-iris",
         "diabetes": "scoring-test-diabetes"}


def save_quick_model(dataset_name: str) -> str:
    spec = load_dataset_spec(dataset_name)
    data = load_dataset(spec, CLEVELAND if dataset_name == "heart" else None)
    estimator = LogisticRegression(max_iter=500) if spec.is_classifier else Ridge()
    pipeline = Pipeline([("preprocess", build_preprocessor(spec)), ("model", estimator)])
    pipeline.fit(data.features, data.target)
    metadata = {"dataset": spec.name, "task": spec.task,
                "spec": spec.model_dump(mode="json", exclude_none=True)}
    if spec.is_classifier:
        metadata["classes"] = spec.target.classes
    model = bentoml.sklearn.save_model(
        f"{QUICK[dataset_name]}:v1-quick000", pipeline, metadata=metadata,
        custom_objects={"reference_sample": data.features.assign(
            **{spec.target.name: data.target}).head(50)})
    return model.tag.name


@pytest.fixture(scope="session")
def quick_models() -> dict[str, str]:
    """data set name -> model name in the BentoML store"""
    names = {}
    for dataset_name in QUICK:
        try:
            bentoml.models.get(f"{QUICK[dataset_name]}:v1-quick000")
            names[dataset_name] = QUICK[dataset_name]
        except bentoml.exceptions.NotFound:
            names[dataset_name] = save_quick_model(dataset_name)
    return names
