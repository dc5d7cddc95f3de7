"""python -m scoring --model NAME [--version N] --input PATH --output PATH
[--engine local|spark] [--master URL] [--max-rejected-share X]

Exit status: 0 scored (rejects within the limit), 1 rejected share over the limit (no
output published), 2 the run could not start (model, input or config).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from scoring.config import DEFAULT_CONFIG, ConfigError, ScoringConfig, load_scoring_config
from scoring.io import InputError, detect_layout, list_parts
from scoring.model import load_scorer
from scoring.output import sibling, write_text
from scoring.summary import Summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scoring", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model name (BentoML store)")
    parser.add_argument("--version", help="MLflow version N, or an exact BentoML version "
                        "(default: the newest champion)")
    parser.add_argument("--input", required=True, type=Path,
                        help="CSV or Parquet file, or a folder of parts")
    parser.add_argument("--output", required=True, type=Path,
                        help="Parquet, or CSV if it ends in .csv")
    parser.add_argument("--rejects", type=Path,
                        help="default: beside the output, OUTPUT_STEM.rejects.EXT")
    parser.add_argument("--engine", choices=("local", "spark"), default="local")
    parser.add_argument("--master", help="Spark master URL (default: spark-submit's, else "
                        "spark.master in the config)")
    parser.add_argument("--model-engine", choices=("compiled", "sklearn"), default="compiled",
                        help="compiled: the form the service scores with, where training "
                             "stored one (default); sklearn: the pipeline")
    parser.add_argument("--max-rejected-share", type=float)
    parser.add_argument("--workers", type=int, help="local processes (0: one per core)")
    parser.add_argument("--chunk-rows", type=int)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    return parser.parse_args(argv)


def with_overrides(config: ScoringConfig, args: argparse.Namespace) -> ScoringConfig:
    updates = {key: value for key, value in (
        ("max_rejected_share", args.max_rejected_share), ("workers", args.workers),
        ("chunk_rows", args.chunk_rows)) if value is not None}
    # validated like the file: a share of 1.5 is an error, not a silent pass
    return ScoringConfig.model_validate(config.model_dump() | updates)


def main(argv: list[str] | None = None, console: Console | None = None) -> int:
    # here, not at module level: the local engine's spawned workers import this module (as
    # the main module of `python -m scoring`), and the store's import (BentoML) is heavy
    from serving.model_store import ModelNotFoundError

    args = parse_args(argv)
    console = console or Console(stderr=True)
    try:
        config = with_overrides(load_scoring_config(args.config), args)
        parts = list_parts(args.input)
        scorer = load_scorer(args.model, args.version, args.model_engine == "compiled")
        layout = detect_layout(scorer.spec, parts[0])
    except (ConfigError, InputError, ModelNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    console.print(f"{scorer.tag}: scoring with {scorer.engine}")
    output = args.output
    rejects = args.rejects or sibling(output, "rejects")
    output.parent.mkdir(parents=True, exist_ok=True)
    summary = Summary(model_name=scorer.name, model_version=scorer.version,
                      engine=args.engine, input=str(args.input), output=str(output),
                      rejects=str(rejects), max_rejected_share=config.max_rejected_share)
    if args.engine == "spark":
        from scoring.engine_spark import run_spark  # pyspark only when asked for

        summary = run_spark(scorer, parts, layout, output, rejects, config, summary,
                            master=args.master)
    else:
        from scoring.engine_local import run_local

        summary = run_local(scorer, parts, layout, output, rejects, config, summary, console)
    write_text(output.with_name(f"{output.stem}.summary.json"), summary.to_json())
    summary.show(console)
    return 0 if summary.passed else 1
