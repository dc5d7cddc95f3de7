"""Train every candidate for a data set, track it in MLflow, pick the best and register it."""

from __future__ import annotations

import platform
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import pandas as pd
import skops.io
from mlflow.models import infer_signature
from rich.console import Console
from rich.table import Table
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, train_test_split

from training import registry
from training.config import TrainingConfig
from training.data import Dataset
from training.evaluate import (
    LOWER_IS_BETTER,
    cv_scorers,
    holdout_metrics,
    is_better,
    save_plots,
    selection_score,
)
from training.faults import kill_point
from training.pipelines import Candidate, build_candidates
from training.redact import redact_url

PACKAGES = ("scikit-learn", "pandas", "numpy", "mlflow", "bentoml", "skops", "pydantic")


class TrainingDataError(ValueError):
    """Validated data that still cannot be trained on (too few rows or classes for the split)."""


@dataclass
class Split:
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    folds: Any


@dataclass
class CandidateResult:
    name: str
    run_id: str
    model_uri: str
    params: dict[str, Any]
    cv: dict[str, tuple[float, float]]
    holdout: dict[str, float]
    seconds: float
    model: Any = field(repr=False)


@dataclass
class TrainingOutcome:
    results: list[CandidateResult]
    best: CandidateResult
    parent_run_id: str
    registration: registry.Registration
    recovered: str | None


def split_data(dataset: Dataset, config: TrainingConfig) -> Split:
    """One hold-out split and one set of CV folds, with fixed seeds, shared by all candidates."""
    spec, X, y = dataset.spec, dataset.features, dataset.target
    classify = spec.is_classifier
    if classify:
        counts = y.value_counts()
        if len(counts) < 2:
            raise TrainingDataError(
                f"{dataset.source}: the target has a single class ({counts.index[0]!r}); "
                "a classifier needs at least two"
            )
        # Each class needs a row in the hold-out set and in every training fold.
        needed = config.cv_folds + max(1, round(1 / config.test_size))
        rare = counts[counts < needed]
        if not rare.empty:
            raise TrainingDataError(
                f"{dataset.source}: class(es) {rare.to_dict()} have fewer than {needed} rows, "
                f"too few for a {config.test_size:.0%} hold-out and {config.cv_folds} CV folds; "
                "add data or lower cv_folds/test_size in the training config"
            )
    minimum = 2 * config.cv_folds + round(1 / config.test_size)
    if len(X) < minimum:
        raise TrainingDataError(
            f"{dataset.source}: {len(X)} rows are too few for {config.cv_folds} CV folds and a "
            f"{config.test_size:.0%} hold-out (need at least {minimum})"
        )
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=config.test_size, random_state=config.seed,
        stratify=y if classify else None,
    )
    fold_class = StratifiedKFold if classify else KFold
    folds = fold_class(n_splits=config.cv_folds, shuffle=True, random_state=config.seed)
    return Split(X_train, X_test, y_train, y_test, folds)


def _untrusted_types(model: Any) -> list[str]:
    # We built this pipeline ourselves, so every type in it is trusted for skops loading.
    return skops.io.get_untrusted_types(data=skops.io.dumps(model))


def _pip_requirements() -> list[str]:
    # Listed explicitly: MLflow's inference imports the model in a subprocess (slow) and
    # picks up unrelated packages of the environment.
    return [f"{name}=={package_version(name)}" for name in ("scikit-learn", "pandas", "numpy",
                                                              "skops", "pydantic", "pyyaml")]


def serving_metadata(dataset: Dataset, holdout: dict[str, float], candidate: str) -> dict:
    spec = dataset.spec
    return {
        "dataset": spec.name,
        "model_name": spec.model_name,
        "task": spec.task,
        "classes": spec.target.classes,
        "positive_class": spec.target.positive_class,
        "selection_metric": spec.selection_metric,
        "candidate": candidate,
        "holdout_metrics": holdout,
        "data_digest": dataset.digest,
        "data_source": dataset.source,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "spec": spec.model_dump(mode="json"),
    }


def train_candidate(
    candidate: Candidate,
    dataset: Dataset,
    split: Split,
    config: TrainingConfig,
    console: Console,
) -> CandidateResult:
    spec = dataset.spec
    scorers = cv_scorers(spec)
    start = time.perf_counter()
    search = GridSearchCV(
        candidate.pipeline, candidate.param_grid or {}, scoring=scorers,
        refit=spec.selection_metric, cv=split.folds, n_jobs=config.n_jobs, error_score="raise",
    )
    with mlflow.start_run(run_name=candidate.name, nested=True) as run:
        search.fit(split.X_train, split.y_train)
        model = search.best_estimator_
        i = search.best_index_
        cv = {}
        for metric in scorers:
            sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
            cv[metric] = (
                sign * float(search.cv_results_[f"mean_test_{metric}"][i]),
                float(search.cv_results_[f"std_test_{metric}"][i]),
            )
        holdout = holdout_metrics(model, split.X_test, split.y_test, spec)
        params = {k.removeprefix("model__"): v for k, v in search.best_params_.items()}
        mlflow.log_params({"candidate": candidate.name,
                           "estimator": type(model[-1]).__name__,
                           **{f"model.{k}": v for k, v in model[-1].get_params().items()
                              if not callable(v)}})
        mlflow.log_metrics({f"cv_{m}_mean": v[0] for m, v in cv.items()}
                           | {f"cv_{m}_std": v[1] for m, v in cv.items()}
                           | {f"holdout_{m}": v for m, v in holdout.items()})
        mlflow.set_tags({"candidate": candidate.name, "search_settings": str(candidate.n_settings)}
                        | registry.owner_tags())
        with tempfile.TemporaryDirectory() as tmp:
            plots = save_plots(model, split.X_test, split.y_test, spec, Path(tmp) / "plots",
                               seed=config.seed, repeats=config.permutation_repeats,
                               max_rows=config.permutation_max_rows)
            for plot in plots:
                mlflow.log_artifact(str(plot), artifact_path="plots")
            serving = Path(tmp) / registry.SERVING_DIR
            serving.mkdir()
            reference = split.X_train.assign(**{spec.target.name: split.y_train}).sample(
                n=min(config.reference_sample_size, len(split.X_train)), random_state=config.seed
            )
            reference.to_parquet(serving / registry.REFERENCE_FILE, index=False)
            mlflow.log_dict(serving_metadata(dataset, holdout, candidate.name),
                            f"{registry.SERVING_DIR}/{registry.METADATA_FILE}")
            mlflow.log_artifact(str(serving / registry.REFERENCE_FILE),
                                artifact_path=registry.SERVING_DIR)
        example = split.X_train.head(5)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
            serialization_format="skops",
            skops_trusted_types=_untrusted_types(model),
            code_paths=[str(Path(__file__).resolve().parent)],
            pip_requirements=_pip_requirements(),
        )
    seconds = time.perf_counter() - start
    console.print(
        f"  [green]done[/] {candidate.name}: {len(search.cv_results_['params'])} setting(s), "
        f"best {params or 'defaults'}, CV {spec.selection_metric} "
        f"{cv[spec.selection_metric][0]:.4f} ± {cv[spec.selection_metric][1]:.4f} ({seconds:.1f}s)"
    )
    return CandidateResult(candidate.name, run.info.run_id, info.model_uri, params, cv,
                           holdout, seconds, model)


def comparison_table(results: list[CandidateResult], dataset: Dataset, best: str) -> Table:
    spec = dataset.spec
    metric = spec.selection_metric
    table = Table(title=f"{spec.name}: candidates (selection metric: {metric}, "
                        f"{'higher' if spec.higher_is_better else 'lower'} is better; "
                        "* = best by CV)")
    table.add_column("candidate")
    table.add_column(f"CV {metric}\nmean ± std", justify="right")
    table.add_column(f"hold-out\n{metric}", justify="right")
    others = [m for m in results[0].holdout if m != metric]
    for m in others:
        table.add_column(f"hold-out\n{m}", justify="right")
    table.add_column("time", justify="right")
    for r in results:
        mean, std = r.cv[metric]
        mark = " *" if r.name == best else ""
        table.add_row(f"{r.name}{mark}", f"{mean:.4f} ± {std:.4f}", f"{r.holdout[metric]:.4f}",
                      *(f"{r.holdout[m]:.4f}" for m in others), f"{r.seconds:.0f}s")
    return table


def promotion_decision(
    client: Any, dataset: Dataset, split: Split, best: CandidateResult, config: TrainingConfig,
    force: bool,
) -> tuple[bool, str]:
    """Whether `best` may become champion: it must beat the champion on the same hold-out rows."""
    spec = dataset.spec
    metric = spec.selection_metric
    new = best.holdout[metric]
    current = registry.champion_version(client, spec.model_name)
    if force:
        return True, "forced with --force-promote"
    if current is None:
        return True, f"first champion ({metric} {new:.4f})"
    try:
        champion = mlflow.sklearn.load_model(f"models:/{spec.model_name}@{registry.CHAMPION}")
        old = selection_score(champion, split.X_test, split.y_test, spec)
    except Exception as exc:  # any failure means "not comparable", never a crash
        return False, (f"the current champion (version {current.version}) cannot be scored "
                       f"on this data ({type(exc).__name__}: {exc}); use --force-promote "
                       "to replace it")
    margin = config.promotion.min_improvement
    if is_better(new, old, spec, margin):
        return True, (f"hold-out {metric} {new:.4f} beats champion version {current.version}'s "
                      f"{old:.4f} on the same rows")
    return False, (f"hold-out {metric} {new:.4f} does not beat champion version "
                   f"{current.version}'s {old:.4f} on the same rows"
                   + (f" by more than {margin}" if margin else "")
                   + "; the champion stays (use --force-promote to override)")


def run_training(
    dataset: Dataset,
    config: TrainingConfig,
    *,
    force_promote: bool = False,
    console: Console | None = None,
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
    return TrainingOutcome(results, best, parent.info.run_id, registration, recovered)
