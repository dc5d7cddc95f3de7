"""Thin CLI: parse arguments, call the training stages, turn known errors into messages."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from rich.console import Console
from rich.markup import escape

from contract.spec import SpecError, available_datasets, load_dataset_spec
from training.config import DEFAULT_CONFIG, ConfigError, load_training_config
from training.data import DataValidationError, load_dataset

DEFAULT_DATASET = "breast_cancer"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train every candidate pipeline for a data set, track the runs in MLflow, "
        "and register the best one in MLflow (alias 'champion') and the BentoML store.",
        epilog="Change which version serves: python -m training promote --help, "
        "python -m training rollback --help.",
    )
    parser.add_argument("--dataset", default=DEFAULT_DATASET,
                        help=f"preset name ({', '.join(available_datasets())}) or a spec file "
                        f"path (default: {DEFAULT_DATASET})")
    parser.add_argument("--data", help="CSV file or URL to read instead of the spec's source")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="training config YAML")
    parser.add_argument("--force-promote", action="store_true",
                        help="make the new model champion even if it does not beat the current one")
    parser.add_argument("--alias", choices=["champion", "challenger"], default="champion",
                        help="'challenger': register the best candidate as the challenger "
                        "(shadow, canary) without the gate and without moving 'champion'")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("promote", "rollback"):
        from training.lifecycle_cli import main as lifecycle_main

        return lifecycle_main(argv)
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # logs and CI: keep the comparison table on one line a row
    # MLflow and BentoML are chatty at INFO; our own progress goes through rich.
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from training.train import TrainingDataError, run_training  # heavy imports, after --help

    try:
        spec = load_dataset_spec(args.dataset)
        config = load_training_config(args.config)
        with console.status(f"loading and validating {spec.name}"):
            dataset = load_dataset(spec, args.data)
        outcome = run_training(dataset, config, force_promote=args.force_promote, console=console,
                               alias=args.alias)
    except (SpecError, ConfigError, DataValidationError, TrainingDataError,
            FileNotFoundError) as exc:
        console.print(f"[bold red]error[/]: {escape(str(exc))}", highlight=False)
        return 2
    return 0 if outcome.registration else 1


if __name__ == "__main__":
    sys.exit(main())
