"""What the compiled path gains, per preset and candidate: one model call on validated
records, scikit-learn pipeline against the compiled form, at 1 and 64 rows.

Fits every candidate of configs/training.yaml (its first grid setting) on each preset's
bundled or fixture data, compiles it as training does, and writes
reports/compiled-gain.json and a Markdown table (README, Compiled model path).

    python -m loadtests.compiled_gain [--presets iris diabetes ...] [--repeats 200]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from threadpoolctl import threadpool_limits

from contract.spec import load_dataset_spec
from inference.predictor import SklearnPredictor
from loadtests.server import ROOT
from training.compile import check_records, compile_pipeline
from training.config import load_training_config
from training.data import load_dataset
from training.pipelines import build_candidate

FIXTURES = ROOT / "tests" / "fixtures"
DATA = {"heart": FIXTURES / "heart" / "processed.cleveland.data",
        "california_housing": FIXTURES / "california_housing" / "housing_sample.csv"}
PRESETS = ["breast_cancer", "iris", "diabetes", "heart", "california_housing"]
CONSOLE = Console()


def per_call_ms(call: Any, repeats: int) -> float:
    call()
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - start) / repeats * 1000


def measure(preset: str, repeats: int) -> list[dict[str, Any]]:
    spec = load_dataset_spec(preset)
    dataset = load_dataset(spec, DATA.get(preset))
    config = load_training_config()
    rows = []
    for candidate in config.candidates[spec.task]:
        first = {k: v[0] for k, v in candidate.search.items()}
        settings = candidate.model_copy(update={"params": candidate.params | first,
                                                "search": {}})
        pipeline = build_candidate(spec, settings, config.seed).pipeline
        pipeline.fit(dataset.features, dataset.target)
        outcome = compile_pipeline(pipeline, spec, dataset.features.head(200))
        records = check_records(dataset.features.head(64))
        sklearn = SklearnPredictor(spec, pipeline)
        row = {"preset": preset, "candidate": candidate.name, "engine": outcome.engine,
               "reason": outcome.reason,
               "max_abs_diff": outcome.parity.get("max_abs_diff")}
        for size in (1, 64):
            batch = records[:size]
            row[f"sklearn_ms_{size}"] = per_call_ms(
                lambda b=batch, m=sklearn: m.predict(b), max(5, repeats // 10))
            if outcome.model is not None:
                row[f"compiled_ms_{size}"] = per_call_ms(
                    lambda b=batch, m=outcome.model: m.predict(b), repeats)
        CONSOLE.print(f"  {preset} {candidate.name}: {outcome.engine}, "
                      f"{row['sklearn_ms_1']:.2f} -> {row.get('compiled_ms_1', 0):.3f} ms")
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| preset | candidate | engine | ms per call, 1 row: sklearn / compiled | "
             "64 rows: sklearn / compiled | speed-up (1 row) | max difference |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        compiled = "compiled_ms_1" in r
        lines.append(
            f"| {r['preset']} | {r['candidate']} | {r['engine']} | "
            f"{r['sklearn_ms_1']:.2f} / {r.get('compiled_ms_1', float('nan')):.3f} | "
            f"{r['sklearn_ms_64']:.2f} / {r.get('compiled_ms_64', float('nan')):.3f} | "
            f"{r['sklearn_ms_1'] / r['compiled_ms_1'] if compiled else 0:.0f}x | "
            f"{r['max_abs_diff'] if r['max_abs_diff'] is not None else '-':.1e} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "compiled-gain.json")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    # One thread each, as in a service worker: the comparison is per call, not per machine.
    with threadpool_limits(1):
        for preset in args.presets:
            rows += measure(preset, args.repeats)
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    print(table(rows))
    CONSOLE.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
