"""The compiled model at run time: a feature plan and the estimator in treelite or ONNX form.

Scores validated records in well under a millisecond a call (a 200-tree forest: about
0.02 ms for one row in onnxruntime against 9 ms in scikit-learn). Used by the service and by
batch scoring; built and parity-checked at training time (training/compile.py).

onnxruntime's tree operators answer in float32. Where a forest's two highest probabilities
are within TIE_MARGIN of each other, float32 may order them differently from scikit-learn's
float64 (an exact tie, 15 votes of 30, comes out 0.5 +- 1e-16 there), so those rows are
scored again by the same forest in treelite, exactly in float64: the label is
scikit-learn's, not a rounding's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference.plan import FeaturePlan

FORMAT = 1
PLAN_FILE = "plan.json"
META_FILE = "compiled.json"
MODEL_FILES = {"treelite": "model.treelite", "onnx": "model.onnx"}
TIE_FILE = "tie_breaker.treelite"
TIE_MARGIN = 1e-6  # far above float32's error on a probability (about 6e-8)


@dataclass
class CompiledModel:
    engine: str  # "treelite" or "onnx"
    plan: FeaturePlan
    model_bytes: bytes
    classes: list[Any] | None  # the estimator's class order (None: a regressor)
    float32_input: bool  # scikit-learn's trees compare float32 features: so must the copy
    parity: dict[str, Any]
    # Boosters: treelite's raw margins through this link in float64 ("sigmoid", "softmax",
    # "identity"), as scikit-learn computes it (treelite's own softmax is float32: 6e-8 off).
    link: str | None = None
    # An ONNX forest classifier: the same forest in treelite, for rows near a tie
    tie_breaker: bytes | None = None

    def __post_init__(self) -> None:
        if self.engine == "treelite":
            self._run = _treelite(self.model_bytes, self.is_classifier, self.link)
        else:
            self._run = _onnx(self)
        self._exact = _treelite(self.tie_breaker, True, None) if self.tie_breaker else None

    @property
    def is_classifier(self) -> bool:
        return self.classes is not None

    def predict(self, records: Sequence[dict[str, Any]]) -> np.ndarray:
        """Class probabilities (estimator class order) or values, one row per record."""
        X = self.plan.matrix(records)
        return self.predict_matrix(X)

    def predict_frame(self, frame: Any) -> np.ndarray:
        """The same from a DataFrame of validated rows (spec column names)."""
        return self.predict_matrix(self.plan.frame_matrix(frame))

    def predict_matrix(self, X: np.ndarray) -> np.ndarray:
        if self.float32_input:
            X = X.astype(np.float32).astype(np.float64)
        X = np.ascontiguousarray(X, dtype=np.float64)
        out = self._run(X)
        if self._exact is not None:
            top = np.partition(out, -2, axis=1)[:, -2:] if out.shape[1] > 2 else out
            near = np.flatnonzero(np.abs(top[:, -1] - top[:, -2]) < TIE_MARGIN)
            if near.size:
                out[near] = self._exact(X[near])
        return out

    # Pickled (Spark ships the model to its executors) without the runtime session, which
    # does not pickle; it is rebuilt from the bytes on the other side.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_run", "_exact")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    # -- storage: a folder (MLflow artifacts) or a dict (BentoML custom object) --------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "engine": self.engine, "plan": self.plan.to_dict(),
                "model_bytes": self.model_bytes, "classes": self.classes,
                "float32_input": self.float32_input, "parity": self.parity, "link": self.link,
                "tie_breaker": self.tie_breaker}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompiledModel:
        if data.get("format") != FORMAT:
            raise ValueError(f"compiled model format {data.get('format')} is not {FORMAT}: "
                             "retrain, or serve with serving.compiled: false")
        return cls(engine=data["engine"], plan=FeaturePlan.from_dict(data["plan"]),
                   model_bytes=data["model_bytes"], classes=data["classes"],
                   float32_input=data["float32_input"], parity=data["parity"],
                   link=data.get("link"), tie_breaker=data.get("tie_breaker"))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / PLAN_FILE).write_text(json.dumps(self.plan.to_dict()))
        (folder / MODEL_FILES[self.engine]).write_bytes(self.model_bytes)
        if self.tie_breaker:
            (folder / TIE_FILE).write_bytes(self.tie_breaker)
        meta = {"format": FORMAT, "engine": self.engine, "classes": self.classes,
                "float32_input": self.float32_input, "parity": self.parity, "link": self.link}
        (folder / META_FILE).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: Path) -> CompiledModel:
        meta = json.loads((folder / META_FILE).read_text())
        tie = folder / TIE_FILE
        return cls.from_dict(meta | {
            "plan": json.loads((folder / PLAN_FILE).read_text()),
            "model_bytes": (folder / MODEL_FILES[meta["engine"]]).read_bytes(),
            "tie_breaker": tie.read_bytes() if tie.exists() else None})


def _treelite(model_bytes: bytes, classifier: bool, link: str | None) -> Any:
    import treelite
    from scipy.special import expit, softmax

    forest = treelite.Model.deserialize_bytes(model_bytes)

    predict = _gtil_predict(forest, pred_margin=link is not None)

    def run(X: np.ndarray) -> np.ndarray:
        out = predict(X)
        out = np.asarray(out, dtype=np.float64).reshape(X.shape[0], -1)
        if link == "softmax":
            out = softmax(out, axis=1)
        elif link == "sigmoid":
            out = expit(out)
        if not classifier:
            return out[:, 0]
        if out.shape[1] == 1:  # a binary booster returns P(second class) only
            return np.column_stack([1.0 - out[:, 0], out[:, 0]])
        return out

    return run


def _onnx(model: CompiledModel) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.model_bytes, options,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outputs = [o.name for o in session.get_outputs()]
    # Classifiers: (label, probabilities); regressors: (values,).
    wanted = [outputs[1]] if model.is_classifier else [outputs[0]]

    def run(X: np.ndarray) -> np.ndarray:
        out = np.asarray(session.run(wanted, {name: X})[0], dtype=np.float64)
        return out if model.is_classifier else out.reshape(-1)

    return run


def _gtil_predict(forest: Any, *, pred_margin: bool) -> Any:
    """treelite.gtil.predict with its configuration parsed once, not per call (JSON made
    and parsed through ctypes: a sixth of a one-row call). One thread: the service already
    runs one model call per API worker at a time."""
    import treelite

    try:  # the private half of gtil.predict; the public call if a release moves it
        from treelite.gtil.gtil import GTILConfig, _predict_impl
    except ImportError:
        return lambda X: treelite.gtil.predict(forest, X, nthread=1, pred_margin=pred_margin)
    config = GTILConfig(nthread=1, predict_type="raw" if pred_margin else "default")
    return lambda X: _predict_impl(forest, X, config=config)
