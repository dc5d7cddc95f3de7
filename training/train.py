"""Train every candidate for a data set, track it in MLflow, pick the best and register it.

The pieces: training/split.py (hold-out and folds), training/candidate.py (one candidate's
search and MLflow run), training/promotion.py (the gate before the champion alias moves).
Split, TrainingDataError, split_data and the skops/pip helpers stay importable from here
(`X as X` re-exports): the CLI and the tests import them from this module.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from importlib.metadata import version as package_version

import mlflow
from rich.console import Console

from training import lifecycle, registry
from training.candidate import CandidateResult, comparison_table, train_candidate
from training.candidate import _pip_requirements as _pip_requirements
from training.candidate import _untrusted_types as _untrusted_types
from training.config import TrainingConfig
from training.data import Dataset
from training.faults import kill_point
from training.pipelines import build_candidates
from training.promotion import promotion_decision
from training.redact import redact_url
from training.split import Split as Split
from training.split import TrainingDataError as TrainingDataError
from training.split import split_data

PACKAGES = ("scikit-learn", "pandas", "numpy", "mlflow", "bentoml", "skops", "pydantic")


@dataclass
class TrainingOutcome:
    results: list[CandidateResult]
    best: CandidateResult
    parent_run_id: str
    registration: registry.Registration
    recovered: str | None
    challenger: str | None = None  # the version given the alias `challenger`, if any


def run_training(
    dataset: Dataset,
    config: TrainingConfig,
    *,
    force_promote: bool = False,
    console: Console | None = None,
    alias: str = registry.CHAMPION,
) -> TrainingOutcome:
    console = console or Console()
    spec = dataset.spec
    config = config.for_dataset(spec.name)
    split = split_data(dataset, config)
    candidates = build_candidates(spec, config)
    client = registry.setup_mlflow(spec.model_name)
    console.print(
        f"[bold]{spec.name}[/]: {len(dataset.features)} rows from {dataset.source} "
        f"(digest {dataset.digest}); {len(split.X_train)} train / {len(split.X_test)} hold-out, "
        f"{config.cv_folds}-fold CV; MLflow at {redact_url(registry.tracking_uri())}"
    )
    experiment = client.get_experiment_by_name(spec.model_name)
    for run_id in registry.close_dead_runs(client, experiment.experiment_id):
        console.print(f"[yellow]closed[/]: run {run_id} was left RUNNING by a killed process")
    for tag in registry.remove_half_written(spec.model_name):
        console.print(f"[yellow]removed[/]: {tag}, half-written by a killed export")
    recovered = registry.reconcile_champion(client, spec.model_name)
    if recovered:
        console.print(f"[yellow]recovered[/]: exported the MLflow champion to BentoML as "
                      f"{recovered} (an earlier run stopped before it did)")
    versions = {name: package_version(name) for name in PACKAGES}
    with mlflow.start_run(run_name=f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}") as parent:
        mlflow.set_tags({"dataset": spec.name, "git_commit": registry.git_commit(),
                         "python": platform.python_version()} | registry.owner_tags()
                        | {f"version.{k}": v for k, v in versions.items()})
        mlflow.log_params({"dataset": spec.name, "task": spec.task, "seed": config.seed,
                           "test_size": config.test_size, "cv_folds": config.cv_folds,
                           "selection_metric": spec.selection_metric,
                           "rows": len(dataset.features), "data_source": dataset.source})
        frame = dataset.features.assign(**{spec.target.name: dataset.target})
        mlflow.log_input(
            mlflow.data.from_pandas(frame, name=spec.name, targets=spec.target.name,
                                    digest=dataset.digest),
            context="training",
        )
        results = []
        for number, candidate in enumerate(candidates, 1):
            fits = candidate.n_settings * config.cv_folds
            with console.status(f"[{number}/{len(candidates)}] {candidate.name}: "
                                f"{candidate.n_settings} setting(s) x {config.cv_folds} folds "
                                f"= {fits} fits, then hold-out evaluation and plots"):
                results.append(train_candidate(candidate, dataset, split, config, console))
            kill_point("after_first_candidate")
        pick = max if spec.higher_is_better else min
        best = pick(results, key=lambda r: r.cv[spec.selection_metric][0])
        console.print(comparison_table(results, dataset, best.name))
        mlflow.set_tag("best_candidate", best.name)
        mlflow.log_metrics({f"best_holdout_{m}": v for m, v in best.holdout.items()})

        promote, reason = promotion_decision(client, dataset, split, best, config, force_promote)
        if alias == lifecycle.CHALLENGER:  # a candidate by request: never champion here
            promote, reason = False, f"--alias challenger (the gate said: {reason})"
        tags = {"dataset": spec.name, "candidate": best.name, "data_digest": dataset.digest,
                "parent_run_id": parent.info.run_id, "git_commit": registry.git_commit()}
        tags |= {f"holdout_{m}": f"{v:.6f}" for m, v in best.holdout.items()}
        with console.status("registering in MLflow and exporting to BentoML"):
            registration = registry.register(
                client, model_name=spec.model_name, model_uri=best.model_uri,
                run_id=best.run_id, tags=tags, promote=promote, reason=reason,
            )
        mlflow.set_tags({"registered_version": registration.version,
                         "promoted": str(registration.promoted)})
    if registration.promoted:
        console.print(f"[bold green]champion[/]: {spec.model_name} version {registration.version} "
                      f"({best.name}) -> BentoML {registration.bento_tag}; {reason}")
    else:
        console.print(f"[bold yellow]not promoted[/]: {spec.model_name} version "
                      f"{registration.version} ({best.name}) registered without the alias: "
                      f"{reason}")
    challenger = None
    if registration.promoted:  # who/when/why and the rollback history (training/lifecycle.py)
        lifecycle.record_training_promotion(client, spec.model_name, registration.version, reason)
    elif alias == lifecycle.CHALLENGER or config.promotion.challenger_on_reject:
        challenger = registration.version
        twin = lifecycle.set_challenger(client, spec.model_name, challenger)
        console.print(f"[bold]challenger[/]: {spec.model_name} version {challenger}"
                      + (f" (BentoML {twin}; NAME:latest stays the champion)" if twin else ""))
    return TrainingOutcome(results, best, parent.info.run_id, registration, recovered,
                           challenger)
