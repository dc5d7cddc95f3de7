"""The local engine end to end through the CLI (in process, one worker: fast): formats and
layouts, rejects, the rejected-share limit, the config."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from rich.console import Console
from sklearn.datasets import load_iris

from contract.spec import load_dataset_spec
from scoring.cli import main
from scoring.config import ConfigError, load_scoring_config
from scoring.io import detect_layout, iter_chunks, list_parts
from scoring.model import load_scorer
from scoring.output import remove_stale_temps
from scoring.validate import check
from tests.conftest import CLEVELAND
from training.data import load_dataset, read_raw

QUIET = Console(quiet=True)


def score(model: str, source: Path, output: Path, *extra: str) -> int:
    return main(["--model", model, "--input", str(source), "--output", str(output),
                 "--workers", "1", "--chunk-rows", "64", *extra], console=QUIET)


def cleveland_with_names() -> pd.DataFrame:
    spec = load_dataset_spec("heart")
    frame, _ = read_raw(spec, CLEVELAND)
    return frame


def test_source_format_scores_every_row_as_the_pipeline_does(quick_models, tmp_path) -> None:
    output = tmp_path / "scores.parquet"
    assert score(quick_models["heart"], CLEVELAND, output) == 0
    scores = pd.read_parquet(output)
    assert scores["row_id"].tolist() == list(range(303))
    scorer = load_scorer(quick_models["heart"])
    expected = scorer.score(load_dataset(scorer.spec, CLEVELAND).features)
    np.testing.assert_allclose(scores[["probability_absent", "probability_present"]],
                               expected, rtol=0, atol=1e-12)
    assert (scores["prediction"] == np.where(expected[:, 1] > expected[:, 0], "present",
                                             "absent")).all()
    assert set(scores["model_name"]) == {"scoring-test-heart"}
    assert set(scores["model_version"]) == {"v1-quick000"}
    assert pd.read_parquet(tmp_path / "scores.rejects.parquet").empty
    assert '"scored": 303' in (tmp_path / "scores.summary.json").read_text()


def test_source_columns_are_read_as_training_reads_them(quick_models) -> None:
    spec = load_dataset_spec("heart")
    parts = list_parts(CLEVELAND)
    layout = detect_layout(spec, parts[0])
    assert not layout.header
    (chunk,) = iter_chunks(parts, layout, 1000)
    frame = check(spec, chunk).frame
    trained_on = load_dataset(spec, CLEVELAND).features
    for feature in spec.features:
        if feature.is_numeric:
            np.testing.assert_array_equal(frame[feature.name], trained_on[feature.name])


def test_sklearn_source_names_are_renamed(quick_models, tmp_path) -> None:
    bunch = load_iris(as_frame=True).frame  # columns as the bundle names them
    bunch.to_csv(tmp_path / "iris.csv", index=False)
    assert score(quick_models["iris"], tmp_path / "iris.csv", tmp_path / "out.csv") == 0
    scores = pd.read_csv(tmp_path / "out.csv")
    assert len(scores) == 150 and list(scores.columns[:2]) == ["row_id", "prediction"]
    assert [c for c in scores.columns if c.startswith("probability_")] == [
        "probability_setosa", "probability_versicolor", "probability_virginica"]


@pytest.mark.parametrize("form", ["csv", "parquet", "csv-parts", "parquet-parts"])
def test_every_input_form_gives_the_same_scores(quick_models, tmp_path, form) -> None:
    frame = cleveland_with_names()  # spec names, the target column too (ignored)
    source = tmp_path / "input"
    if form.endswith("parts"):
        source.mkdir()
        for index, start in enumerate(range(0, len(frame), 100)):
            part = frame.iloc[start:start + 100]
            name = source / f"part-{index:05d}.{form.split('-')[0]}"
            part.to_csv(name, index=False) if form.startswith("csv") else part.to_parquet(name)
        (source / "_SUCCESS").touch()
    elif form == "csv":
        source = source.with_suffix(".csv")
        frame.to_csv(source, index=False)
    else:
        source = source.with_suffix(".parquet")
        frame.to_parquet(source)
    assert score(quick_models["heart"], source, tmp_path / "out.parquet") == 0
    reference = tmp_path / "reference.parquet"
    assert score(quick_models["heart"], CLEVELAND, reference) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out.parquet"),
                                  pd.read_parquet(reference), check_exact=False, rtol=1e-12)


def bad_rows_file(tmp_path: Path) -> Path:
    frame = cleveland_with_names().head(20).astype(object)
    frame.loc[2, "age"] = 250          # above max 110
    frame.loc[5, "cp"] = 9             # not a category
    frame.loc[5, "chol"] = "high"      # not a number
    frame.loc[7, "sex"] = None         # may not be missing
    frame.loc[11, "oldpeak"] = "inf"   # text that is no number
    frame.loc[13, "ca"] = 1.5          # not an integer
    frame.loc[13, "trestbps"] = None   # may be missing: fine
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    return path


EXPECTED_REJECTS = {(2, "age", "less_than_equal"), (5, "cp", "literal_error"),
                    (5, "chol", "float_type"), (7, "sex", "missing"),
                    (11, "oldpeak", "float_type"), (13, "ca", "int_type")}


def test_bad_rows_are_rejected_with_field_and_rule(quick_models, tmp_path) -> None:
    output = tmp_path / "scores.parquet"
    assert score(quick_models["heart"], bad_rows_file(tmp_path), output,
                 "--max-rejected-share", "0.5") == 0
    rejects = pd.read_parquet(tmp_path / "scores.rejects.parquet")
    assert set(zip(rejects.row_id, rejects.field, rejects.rule, strict=True)) == EXPECTED_REJECTS
    assert rejects.loc[rejects.field == "age", "message"].item() == "above the maximum 110"
    scored = pd.read_parquet(output)
    assert scored.row_id.tolist() == [i for i in range(20) if i not in (2, 5, 7, 11, 13)]
    summary = (tmp_path / "scores.summary.json").read_text()
    assert '"rejected": 5' in summary and '"scored": 15' in summary


def test_too_many_rejects_exit_non_zero_and_publish_no_output(quick_models, tmp_path) -> None:
    output = tmp_path / "scores.parquet"
    assert score(quick_models["heart"], bad_rows_file(tmp_path), output,
                 "--max-rejected-share", "0.2") == 1  # 5 of 20 rejected
    assert not output.exists()
    assert len(pd.read_parquet(tmp_path / "scores.rejects.parquet")) == 6
    assert '"passed": false' in (tmp_path / "scores.summary.json").read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_regressor_output_holds_the_value(quick_models, tmp_path) -> None:
    spec = load_dataset_spec("diabetes")
    frame, _ = read_raw(spec)
    frame.to_parquet(tmp_path / "diabetes.parquet")
    assert score(quick_models["diabetes"], tmp_path / "diabetes.parquet",
                 tmp_path / "out.parquet") == 0
    scores = pd.read_parquet(tmp_path / "out.parquet")
    assert scores.dtypes["prediction"] == np.float64
    assert list(scores.columns) == ["row_id", "prediction", "model_name", "model_version"]
    scorer = load_scorer(quick_models["diabetes"])
    np.testing.assert_allclose(scores.prediction, scorer.score(frame), rtol=1e-12)


def test_unusable_runs_exit_2(quick_models, tmp_path) -> None:
    assert score("no-such-model", CLEVELAND, tmp_path / "o.parquet") == 2
    assert score(quick_models["heart"], tmp_path / "absent.csv", tmp_path / "o.parquet") == 2
    pd.DataFrame({"age": [50]}).to_csv(tmp_path / "few.csv", index=False)
    assert score(quick_models["heart"], tmp_path / "few.csv", tmp_path / "o.parquet") == 2
    assert score(quick_models["heart"], CLEVELAND, tmp_path / "o.parquet",
                 "--max-rejected-share", "1.5") == 2
    assert score(quick_models["heart"], CLEVELAND, tmp_path / "o.parquet",
                 "--version", "7") == 2
    assert not (tmp_path / "o.parquet").exists()


def test_config_refuses_unknown_and_missing_keys(tmp_path) -> None:
    config = load_scoring_config()
    assert 0 < config.max_rejected_share < 1
    text = Path("configs/scoring.yaml").read_text()
    (tmp_path / "typo.yaml").write_text(text + "chunk_row: 5\n")
    with pytest.raises(ConfigError, match="chunk_row"):
        load_scoring_config(tmp_path / "typo.yaml")
    (tmp_path / "short.yaml").write_text(text.replace("workers: 0\n", ""))
    with pytest.raises(ConfigError, match="workers"):
        load_scoring_config(tmp_path / "short.yaml")


def test_temporary_files_of_dead_runs_are_removed(tmp_path) -> None:
    dead = tmp_path / ".scores.parquet.tmp-999999999"
    dead.write_bytes(b"half")
    alive = tmp_path / f".scores.parquet.tmp-{os.getpid()}"
    alive.write_bytes(b"mine")
    assert remove_stale_temps(tmp_path) == [dead]
    assert alive.exists()


def test_chunks_keep_input_order_across_parts(tmp_path) -> None:
    spec = load_dataset_spec("iris")
    source = tmp_path / "parts"
    source.mkdir()
    frame, _ = read_raw(spec)
    for index in range(3):
        frame.iloc[index * 50:(index + 1) * 50].to_parquet(source / f"p{index}.parquet")
    parts = list_parts(source)
    chunks = list(iter_chunks(parts, detect_layout(spec, parts[0]), 40))
    assert [c.num_rows for c in chunks] == [40, 40, 40, 30]
    joined = pa.concat_tables(chunks).to_pandas()
    np.testing.assert_array_equal(joined["sepal_length"], frame["sepal_length"])
