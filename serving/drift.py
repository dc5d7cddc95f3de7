"""Data drift of captured production records against the model's reference sample.

Evidently 0.7's DataDriftPreset, with the column types taken from the data set spec
(numeric and integer features as numerical, categorical and binary ones as categorical),
so Evidently picks a fitting test per column (K-S / chi-square or Z-test on small
samples, Wasserstein / Jensen-Shannon distance on large ones).

    python -m serving.drift [--model NAME] [--store-url URL] [--window 1000] [--cleanup]
    python -m serving.drift --capture-dir DIR [--out DIR]   # JSON-lines capture files instead

By default the window is the newest predictions in the prediction store (every replica's
traffic) and the summary and HTML report are saved there as a drift run, which every
replica serves on GET /drift; run this way it is the Kubernetes CronJob
(k8s/base/drift-cronjob.yaml).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from contract.spec import DatasetSpec, canonical_value

SUMMARY_FILE = "drift_summary.json"
TOO_FEW_ROWS = 2  # the CLI's exit status when the capture holds too few rows to judge
REPORT_FILE = "drift_report.html"


@dataclass
class FeatureDrift:
    feature: str
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass
class DriftSummary:
    model_name: str
    model_version: str
    checked_at: float
    window_rows: int
    reference_rows: int
    drift_share: float
    share_threshold: float
    drift_detected: bool
    features: list[FeatureDrift]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftSummary:
        return cls(**(data | {"features": [FeatureDrift(**f) for f in data["features"]]}))


def _typed(spec: DatasetSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """Spec columns present in `frame`: numbers as floats, categories as canonical strings."""
    out = pd.DataFrame(index=frame.index)
    for feature in spec.features:
        if feature.name not in frame.columns:
            continue  # e.g. a sensitive feature left out of the capture
        column = frame[feature.name]
        if feature.is_categorical:
            out[feature.name] = column.map(canonical_value).astype("object")
        else:
            out[feature.name] = pd.to_numeric(column, errors="coerce").astype("float64")
    return out


def compute_drift(
    spec: DatasetSpec, reference: pd.DataFrame, current: pd.DataFrame, *,
    model_name: str, model_version: str, share_threshold: float = 0.5,
    report_path: Path | None = None,
) -> DriftSummary:
    current = _typed(spec, current)
    reference = _typed(spec, reference)[list(current.columns)]
    # Evidently refuses a column with no values at all. A feature that arrives always
    # missing while the reference has values has drifted (in missingness): say so here.
    skipped: list[FeatureDrift] = []
    for column in list(current.columns):
        if current[column].notna().any() and reference[column].notna().any():
            continue
        had_values = bool(reference[column].notna().any())
        method = "all values missing" if had_values else "no reference values"
        skipped.append(FeatureDrift(column, method, 1.0 if had_values else 0.0, 1.0,
                                    had_values and not current[column].notna().any()))
        current, reference = current.drop(columns=column), reference.drop(columns=column)
    tested: list[FeatureDrift] = []
    tested_share = 0.0
    if len(current.columns):
        snapshot = _evidently(spec, current, reference, share_threshold)
        tested, tested_share = _read_snapshot(snapshot)
        if report_path is not None:
            report_path.parent.mkdir(parents=True, exist_ok=True)
            snapshot.save_html(str(report_path))
    features = skipped + tested
    drifted = tested_share * len(tested) + sum(f.drifted for f in skipped)
    share = drifted / len(features) if features else 0.0
    return DriftSummary(
        model_name=model_name, model_version=model_version, checked_at=time.time(),
        window_rows=len(current), reference_rows=len(reference), drift_share=share,
        share_threshold=share_threshold, drift_detected=share >= share_threshold,
        features=features,
    )


def _evidently(spec: DatasetSpec, current: pd.DataFrame, reference: pd.DataFrame,
               share_threshold: float) -> Any:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    by_name = {f.name: f for f in spec.features}
    definition = DataDefinition(
        numerical_columns=[c for c in current.columns if by_name[c].is_numeric],
        categorical_columns=[c for c in current.columns if by_name[c].is_categorical],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Evidently warns about constant columns and such
        return Report([DataDriftPreset(drift_share=share_threshold)]).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )


def _read_snapshot(snapshot: Any) -> tuple[list[FeatureDrift], float]:
    """Per-feature results and the drifted share, from an Evidently snapshot."""
    features, share = [], 0.0
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config.get("type", "").endswith("ValueDrift"):
            method, threshold, score = config["method"], float(config["threshold"]), \
                float(metric["value"])
            # p-values drift when small; distances when large.
            drifted = score < threshold if "p_value" in method else score >= threshold
            features.append(FeatureDrift(config["column"], method, score, threshold, drifted))
    return features, share


def captured_frame(lines: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([line["features"] for line in lines])


def write_summary(summary: DriftSummary, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SUMMARY_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary.to_dict(), indent=2))
    tmp.replace(path)  # readers never see half a file
    return path


def check_records(tag: str, current: pd.DataFrame, out: Path, *,
                  drift_share: float) -> DriftSummary:
    """Drift of `current` against the reference sample of model `tag`; writes the HTML report
    and the JSON summary to `out`."""
    from serving.model_store import find_served_model

    served = find_served_model(tag)
    summary = compute_drift(served.spec, served.reference, current, model_name=served.name,
                            model_version=served.version, share_threshold=drift_share,
                            report_path=out / REPORT_FILE)
    write_summary(summary, out)
    return summary


def check_capture(tag: str, capture_dir: Path, out: Path, *, window: int, min_rows: int,
                  drift_share: float) -> DriftSummary | str:
    """Drift of the newest `window` captured records of model `tag` (this version only:
    another version's traffic says nothing about it), or why there are too few."""
    from serving.capture import read_capture
    from serving.model_store import find_served_model

    served = find_served_model(tag)
    lines = [line for line in read_capture(capture_dir, served.name, window)
             if line.get("model_version") == served.version]
    if len(lines) < min_rows:
        return (f"{len(lines)} captured rows of {served.tag} in {capture_dir}, need "
                f"{min_rows}; send traffic or lower drift.min_rows")
    return check_records(served.tag, captured_frame(lines), out, drift_share=drift_share)


def check_store(tag: str, url: str, *, window: int, min_rows: int, drift_share: float,
                out: Path | None = None) -> DriftSummary | str:
    """Drift of the newest `window` stored predictions of model `tag` (this version, from
    every replica), saved to the store as a drift run with its report (and to `out`), or
    why there are too few."""
    import tempfile

    from serving.model_store import find_served_model
    from store import PredictionStore

    served = find_served_model(tag)
    store = PredictionStore.from_url(url, migrate_schema=False)
    try:
        current = store.recent_features(served.name, limit=window,
                                        model_version=served.version)
        if len(current) < min_rows:
            return (f"{len(current)} stored predictions of {served.tag}, need {min_rows}; "
                    "send traffic or lower drift.min_rows")
        with tempfile.TemporaryDirectory() as tmp:
            report = (out or Path(tmp)) / REPORT_FILE
            summary = compute_drift(served.spec, served.reference, current,
                                    model_name=served.name, model_version=served.version,
                                    share_threshold=drift_share, report_path=report)
            html = report.read_text(encoding="utf-8") if report.is_file() else None
        if out is not None:
            write_summary(summary, out)
        store.save_drift_run(summary.to_dict(), html)
        return summary
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    from serving.config import load_serving_config, model_tag
    from store import resolve_url

    settings = load_serving_config()
    monitoring = settings.monitoring
    parser = argparse.ArgumentParser(description="Drift of served records vs the reference")
    parser.add_argument("--model", default=settings.served_tag, help="model name or tag")
    parser.add_argument("--store-url", help="prediction store (default: PREDICTION_STORE_URL, "
                        "else monitoring.store.url)")
    parser.add_argument("--capture-dir", type=Path,
                        help="read JSON-lines capture files here instead of the store")
    parser.add_argument("--cleanup", action="store_true", help="then delete predictions "
                        "older than monitoring.store.retention_days from the store")
    parser.add_argument("--too-few-ok", action="store_true", help="exit 0 when there are "
                        "too few rows to judge (a CronJob with little traffic is not failing)")
    parser.add_argument("--window", type=int, default=monitoring.drift.window_rows)
    parser.add_argument("--min-rows", type=int, default=monitoring.drift.min_rows)
    parser.add_argument("--drift-share", type=float, default=monitoring.drift.drift_share)
    parser.add_argument("--out", type=Path, help="report folder (default: CAPTURE_DIR/drift)")
    parser.add_argument("--current", type=Path,
                        help="a CSV of records to check instead of the capture")
    args = parser.parse_args(argv)

    tag = model_tag(args.model)
    url = resolve_url(args.store_url or monitoring.store.url)
    out = args.out or (args.capture_dir / "drift" if args.capture_dir else None)
    if args.current:
        out = out or monitoring.capture_dir / "drift"
        summary = check_records(tag, pd.read_csv(args.current), out,
                                drift_share=args.drift_share)
    else:
        if args.capture_dir:
            result = check_capture(tag, args.capture_dir, out, window=args.window,
                                   min_rows=args.min_rows, drift_share=args.drift_share)
        else:
            result = check_store(tag, url, window=args.window, min_rows=args.min_rows,
                                 drift_share=args.drift_share, out=out)
        if args.cleanup:
            cleanup(url, monitoring.store.retention_days)
        if isinstance(result, str):
            print(result, file=sys.stderr)
            return 0 if args.too_few_ok else TOO_FEW_ROWS
        summary = result
    drifted = [f.feature for f in summary.features if f.drifted]
    print(f"{summary.model_name} {summary.model_version}: {summary.window_rows} rows vs "
          f"{summary.reference_rows} reference rows; drifted {len(drifted)}/"
          f"{len(summary.features)} features ({summary.drift_share:.0%}): {drifted}; "
          f"drift detected: {summary.drift_detected}")
    print(f"report: {out / REPORT_FILE}; summary: {out / SUMMARY_FILE}" if out else
          "summary and report saved to the prediction store (GET /drift, /drift/report)")
    return 0


def cleanup(url: str, retention_days: float) -> None:
    from store import PredictionStore

    store = PredictionStore.from_url(url, migrate_schema=False)
    try:
        done = store.cleanup(retention_days)
    finally:
        store.close()
    print(f"retention: deleted {done.predictions} predictions and {done.drift_runs} drift "
          f"runs older than {done.cutoff}")


if __name__ == "__main__":
    sys.exit(main())
