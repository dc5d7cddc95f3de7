"""Scoring one chunk of rows: the function both engines run (locally per chunk, on Spark in
mapInPandas per Arrow batch).

Output: one row per valid input row with its row id, the prediction (the class with the
highest probability, as the service answers it, or the value), the probability of each
class in the spec's order (classifiers), the model name and version. Rejects: one row per
broken rule with the row id, the field and the rule (Pydantic's error type, as the
service's validation-failure metric names it) and the rule in words.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from scoring.model import Scorer
from scoring.validate import check, describe

REJECT_COLUMNS = ("row_id", "field", "rule", "message")
REJECTS_SCHEMA = pa.schema([("row_id", pa.int64()), ("field", pa.string()),
                            ("rule", pa.string()), ("message", pa.string())])


def probability_column(label: str) -> str:
    return f"probability_{label}"


def output_schema(scorer: Scorer) -> pa.Schema:
    fields: list[tuple[str, pa.DataType]] = [("row_id", pa.int64())]
    if scorer.spec.is_classifier:
        fields.append(("prediction", pa.string()))
        fields += [(probability_column(c), pa.float64()) for c in scorer.classes]
    else:
        fields.append(("prediction", pa.float64()))
    fields += [("model_name", pa.string()), ("model_version", pa.string())]
    return pa.schema(fields)


def score_chunk(scorer: Scorer, chunk: pa.Table | pd.DataFrame,
                first_row_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scored rows, rejects) of a chunk whose first row has id `first_row_id`."""
    checked = check(scorer.spec, chunk)
    row_ids = first_row_id + np.arange(len(checked.valid), dtype=np.int64)
    scored: dict[str, object] = {"row_id": row_ids[checked.valid]}
    frame = checked.frame[checked.valid].reset_index(drop=True)
    if scorer.spec.is_classifier:
        out = scorer.score(frame) if len(frame) else np.empty((0, len(scorer.classes)))
        labels = np.asarray(scorer.classes, dtype=object)
        scored["prediction"] = labels[out.argmax(axis=1)] if len(out) else labels[:0]
        for index, label in enumerate(scorer.classes):
            scored[probability_column(label)] = out[:, index]
    else:
        scored["prediction"] = scorer.score(frame) if len(frame) else np.empty(0)
    scored["model_name"] = scorer.name
    scored["model_version"] = scorer.version
    problems = checked.problems
    by_field = {f.name: f for f in scorer.spec.features}
    rejects = pd.DataFrame({
        "row_id": row_ids[problems["row"].to_numpy(dtype=np.int64)],
        "field": problems["field"].to_numpy(dtype=object),
        "rule": problems["rule"].to_numpy(dtype=object),
        "message": [describe(by_field[f], r) for f, r in zip(problems["field"],
                                                             problems["rule"], strict=True)],
    })
    return pd.DataFrame(scored), rejects


def to_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
