"""The model a scoring run uses: found in the BentoML store as the service finds it.

`load_scorer` is the one place that loads a model and `Scorer.score` the one place that
calls it (frame -> probabilities or values); both engines go through them, so switching
to another inference path (a compiled model) is a change here only. A Scorer must pickle:
the spark engine ships it to the executors as bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from contract.spec import DatasetSpec
from inference.compiled import CompiledModel

# BentoML is imported where a model is looked up, not at module level: the local engine's
# workers and Spark's executors unpickle a Scorer (which imports this module) and never
# touch the store, and importing BentoML costs each of them over 100 MB.


@dataclass
class Scorer:
    name: str
    version: str  # the BentoML version, as the service answers it (e.g. v3-1a2b3c4d)
    tag: str
    spec: DatasetSpec
    classes: list[str]  # classifiers: the spec's class order, the order of score's columns
    pipeline: Any  # the scikit-learn pipeline, or None when the compiled form scores
    compiled: CompiledModel | None = None  # the form the service scores with, if stored

    @property
    def engine(self) -> str:
        return self.compiled.engine if self.compiled is not None else "sklearn"

    def __post_init__(self) -> None:
        if self.spec.is_classifier:
            # Columns in the spec's class order, whatever order the estimator learned (as
            # serving/scorer.py orders them).
            learned = list(self.compiled.classes if self.compiled is not None
                           else self.pipeline.classes_)
            self._columns = [learned.index(c) for c in self.classes]

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw features (spec columns) -> class probabilities [rows, classes] or values."""
        if self.compiled is not None:
            out = self.compiled.predict_frame(frame)
            return out[:, self._columns] if self.spec.is_classifier else out
        if self.spec.is_classifier:
            return self.pipeline.predict_proba(frame)[:, self._columns]
        return np.asarray(self.pipeline.predict(frame), dtype=float)


def resolve_tag(name: str, version: str | None = None) -> str:
    """NAME:latest (the newest champion), NAME at MLflow version N (BentoML's vN-<run>), or
    an exact BentoML version."""
    import bentoml

    from serving.model_store import ModelNotFoundError

    if version is None:
        return f"{name}:latest"
    if not re.fullmatch(r"\d+", version):
        return f"{name}:{version}"
    try:
        versions = [str(m.tag.version) for m in bentoml.models.list(name)]
    except bentoml.exceptions.NotFound:
        versions = []
    matching = [v for v in versions if v.startswith(f"v{version}-")]
    if not matching:
        known = ", ".join(sorted(versions)) or "none"
        raise ModelNotFoundError(f"model '{name}' has no version {version} in the BentoML "
                                 f"store (versions there: {known})")
    return f"{name}:{sorted(matching)[-1]}"


def load_scorer(name: str, version: str | None = None, compiled: bool = True) -> Scorer:
    """NAME's model (at its newest champion unless `version` says): the compiled form the
    service scores with when training stored one and `compiled`, else the pipeline."""
    import bentoml

    from inference.predictor import stored_compiled
    from serving.model_store import find_served_model

    served = find_served_model(resolve_tag(name, version))
    model = bentoml.models.get(served.tag)
    form = stored_compiled(model) if compiled else None
    pipeline = bentoml.sklearn.load_model(model) if form is None else None
    return Scorer(name=served.name, version=served.version, tag=served.tag, spec=served.spec,
                  classes=served.classes, pipeline=pipeline, compiled=form)
