"""Compile a fitted pipeline for serving, and prove it answers as the pipeline does.

The preprocessing becomes a `FeaturePlan` (NumPy), the estimator an ONNX graph (skl2onnx,
run by onnxruntime) or, for tree ensembles whose ONNX form misses parity, a treelite model.
Tree ensembles try ONNX first: onnxruntime walks a 200-tree forest five times faster than
treelite's interpreter, but its tree operators answer in float32 (about 1e-7 off a
probability), which a regressor with large values cannot afford; treelite is exact in
float64. A form is kept only if, on the hold-out rows and on the same rows with values
missing, every probability or value is within `tolerance` of the pipeline's and every
predicted label is the same. Otherwise the next form is tried, and if none passes the reasons
are recorded and the pipeline is served by scikit-learn.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from contract.spec import DatasetSpec
from inference.compiled import CompiledModel
from inference.plan import FeaturePlan, NotCompilable

# scikit-learn estimators treelite imports; the first four compare float32 features.
FLOAT32_TREES = {"RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
                 "ExtraTreesRegressor", "GradientBoostingClassifier",
                 "GradientBoostingRegressor"}
FLOAT64_TREES = {"HistGradientBoostingClassifier", "HistGradientBoostingRegressor"}


@dataclass
class CompileOutcome:
    model: CompiledModel | None
    reason: str  # why not compiled, or what was compiled
    parity: dict[str, Any] = field(default_factory=dict)

    @property
    def engine(self) -> str:
        return self.model.engine if self.model is not None else "sklearn"


def compile_pipeline(pipeline: Any, spec: DatasetSpec, X_check: pd.DataFrame,
                     tolerance: float = 1e-6,
                     tree_engines: Sequence[str] = ("onnx", "treelite")) -> CompileOutcome:
    """The first converted form that passes parity (tree ensembles: in `tree_engines`
    order)."""
    failed: list[str] = []
    parity: dict[str, Any] = {}
    try:
        plan, estimator = _split(pipeline, X_check)
        conversions = _conversions(estimator, plan, spec, X_check, tree_engines)
    except NotCompilable as exc:
        return CompileOutcome(None, f"not compiled: {exc}")
    for engine, convert in conversions:
        try:
            model = convert()
        except NotCompilable as exc:
            failed.append(f"{engine}: {exc}")
            continue
        parity = check_parity(pipeline, model, spec, X_check)
        model.parity = parity
        if parity["max_abs_diff"] <= tolerance and not parity["label_mismatches"]:
            tried = f" ({'; '.join(failed)})" if failed else ""
            return CompileOutcome(model, f"compiled with {engine}{tried}", parity)
        failed.append(f"{engine}: parity failed on the hold-out rows (max difference "
                      f"{parity['max_abs_diff']:.3g} > {tolerance:g} or "
                      f"{parity['label_mismatches']} label(s) differ)")
    return CompileOutcome(None, f"not compiled: {'; '.join(failed)}", parity)


def _split(pipeline: Any, X_check: pd.DataFrame) -> tuple[FeaturePlan, Any]:
    if not hasattr(pipeline, "steps") or len(pipeline.steps) != 2:
        raise NotCompilable("the pipeline is not (preprocessing, estimator)")
    return FeaturePlan.from_pipeline(pipeline.steps[0][1]), pipeline.steps[-1][1]


def _conversions(estimator: Any, plan: FeaturePlan, spec: DatasetSpec,
                 X_check: pd.DataFrame, tree_engines: Sequence[str]) -> list[tuple[str, Any]]:
    """(engine, convert) in the order to try them; each convert raises NotCompilable."""
    X = plan.matrix(check_records(X_check.head(5)))
    kind = type(estimator).__name__
    classes = [_native(c) for c in estimator.classes_] if spec.is_classifier else None
    float32 = kind in FLOAT32_TREES  # scikit-learn compares these trees' features in float32

    def onnx() -> CompiledModel:
        graph = _to_onnx(estimator, X, spec)
        # A forest classifier keeps its exact treelite form for rows near a tie
        ties = _treelite_bytes(estimator) if float32 and classes is not None else None
        try:
            return CompiledModel("onnx", plan, graph, classes, float32, {}, tie_breaker=ties)
        except Exception as exc:  # onnxruntime has no float64 output for a tree regressor
            raise NotCompilable(f"onnxruntime cannot load the {kind} graph: "
                                f"{str(exc)[:200]}") from exc

    if kind not in FLOAT32_TREES | FLOAT64_TREES:
        return [("onnx", onnx)]

    def forest() -> CompiledModel:
        return CompiledModel("treelite", plan, _treelite_bytes(estimator), classes, float32, {},
                             _booster_link(estimator, classes))

    converts = {"onnx": onnx, "treelite": forest}
    return [(engine, converts[engine]) for engine in tree_engines]


def _treelite_bytes(estimator: Any) -> bytes:
    import treelite

    try:
        return treelite.sklearn.import_model(estimator).serialize_bytes()
    except Exception as exc:  # treelite raises its own and plain errors alike
        raise NotCompilable(f"treelite cannot import {type(estimator).__name__}: {exc}") from exc


def _booster_link(estimator: Any, classes: list[Any] | None) -> str | None:
    """How a histogram booster turns margins into answers, computed in float64 like it does."""
    if type(estimator).__name__ not in FLOAT64_TREES:
        return None  # forests: treelite averages the trees' own outputs exactly
    if classes is not None:
        return "sigmoid" if len(classes) == 2 else "softmax"
    if estimator.loss not in ("squared_error", "absolute_error", "quantile"):
        raise NotCompilable(f"HistGradientBoostingRegressor with loss '{estimator.loss}'")
    return "identity"


def _to_onnx(estimator: Any, X: np.ndarray, spec: DatasetSpec) -> bytes:
    from skl2onnx import to_onnx

    options = {id(estimator): {"zipmap": False}} if spec.is_classifier else None
    try:
        # Double-precision input and ai.onnx.ml opset 3: linear models compute in float64.
        onx = to_onnx(estimator, X[:1].astype(np.float64), options=options,
                      target_opset={"": 17, "ai.onnx.ml": 3})
    except Exception as exc:  # skl2onnx raises many types for unsupported models
        first = (str(exc).splitlines() or [""])[0].split(" with name=")[0]
        raise NotCompilable(f"skl2onnx cannot convert {type(estimator).__name__}: "
                            f"{first[:160]}") from exc
    return onx.SerializeToString()


def check_records(X: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the service's validation hands them over: missing values are None."""
    return [{k: (None if _is_missing(v) else v) for k, v in row.items()}
            for row in X.to_dict("records")]


def with_missing(X: pd.DataFrame) -> pd.DataFrame:
    """The same rows with one feature blanked per row, in turn: every imputer is exercised."""
    blanked = X.copy().astype(object)
    for i in range(len(blanked)):
        blanked.iat[i, i % blanked.shape[1]] = None
    return blanked


def check_parity(pipeline: Any, model: CompiledModel, spec: DatasetSpec,
                 X_check: pd.DataFrame) -> dict[str, Any]:
    rows = pd.concat([X_check, with_missing(X_check)], ignore_index=True)
    records = check_records(rows)
    frame = pd.DataFrame.from_records(records, columns=spec.feature_names)
    frame = frame.where(frame.notna(), np.nan)
    got = model.predict(records)
    if spec.is_classifier:
        expected = pipeline.predict_proba(frame)
        labels = np.asarray(pipeline.classes_)[np.argmax(got, axis=1)]
        mismatches = int(np.sum(labels != pipeline.predict(frame)))
    else:
        expected = np.asarray(pipeline.predict(frame), dtype=float)
        mismatches = 0
    diff = float(np.max(np.abs(got - expected))) if len(rows) else 0.0
    one = records[:1]
    return {"rows": len(rows), "max_abs_diff": diff, "label_mismatches": mismatches,
            "ms_per_call_sklearn": _ms(lambda: _sklearn_call(pipeline, spec, frame.head(1))),
            "ms_per_call_compiled": _ms(lambda: model.predict(one))}


def _sklearn_call(pipeline: Any, spec: DatasetSpec, frame: pd.DataFrame) -> Any:
    return pipeline.predict_proba(frame) if spec.is_classifier else pipeline.predict(frame)


def _ms(call: Any, repeats: int = 20) -> float:
    call()
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    return round((time.perf_counter() - start) / repeats * 1000, 4)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
