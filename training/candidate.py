"""Train one candidate: grid search on the shared folds, hold-out metrics, plots, and the
MLflow run holding the model with the metadata and reference sample the service reads; then
the table that compares the candidates."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import skops.io
from mlflow.models import infer_signature
from rich.console import Console
from rich.table import Table
from sklearn.model_selection import GridSearchCV

from training import registry
from training.compile import CompileOutcome, compile_pipeline
from training.config import TrainingConfig
from training.data import Dataset
from training.evaluate import LOWER_IS_BETTER, cv_scorers, holdout_metrics, save_plots
from training.pipelines import Candidate
from training.split import Split


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


def _untrusted_types(model: Any) -> list[str]:
    # We built this pipeline ourselves, so every type in it is trusted for skops loading.
    return skops.io.get_untrusted_types(data=skops.io.dumps(model))


def _pip_requirements() -> list[str]:
    # Listed explicitly: MLflow's inference imports the model in a subprocess (slow) and
    # picks up unrelated packages of the environment.
    return [f"{name}=={package_version(name)}" for name in ("scikit-learn", "pandas", "numpy",
                                                              "skops", "pydantic", "pyyaml")]


def serving_metadata(dataset: Dataset, holdout: dict[str, float], candidate: str,
                     compiled: CompileOutcome | None = None) -> dict:
    spec = dataset.spec
    return {
        "compiled": {"engine": compiled.engine, "reason": compiled.reason,
                     "parity": compiled.parity} if compiled else {"engine": "sklearn",
                                                                  "reason": "not attempted"},
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
        compiled = None
        if config.compile.enabled:
            compiled = compile_pipeline(model, spec, split.X_test,
                                        config.compile.parity_tolerance,
                                        config.compile.tree_engines)
            _log_compiled(compiled)
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
            if compiled is not None and compiled.model is not None:
                compiled.model.save(Path(tmp) / registry.COMPILED_DIR)
                mlflow.log_artifacts(str(Path(tmp) / registry.COMPILED_DIR),
                                     artifact_path=registry.COMPILED_DIR)
            mlflow.log_dict(serving_metadata(dataset, holdout, candidate.name, compiled),
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
    if compiled is not None:
        parity = compiled.parity
        speed = (f", {parity['ms_per_call_sklearn']:.2f} -> {parity['ms_per_call_compiled']:.3f} "
                 "ms per one-row call" if compiled.model is not None else "")
        console.print(f"  {candidate.name}: {compiled.reason}{speed}")
    console.print(
        f"  [green]done[/] {candidate.name}: {len(search.cv_results_['params'])} setting(s), "
        f"best {params or 'defaults'}, CV {spec.selection_metric} "
        f"{cv[spec.selection_metric][0]:.4f} ± {cv[spec.selection_metric][1]:.4f} ({seconds:.1f}s)"
    )
    return CandidateResult(candidate.name, run.info.run_id, info.model_uri, params, cv,
                           holdout, seconds, model)


def _log_compiled(outcome: CompileOutcome) -> None:
    """Tags say which engine serves this candidate and why; parity figures are metrics."""
    mlflow.set_tags({"compiled_engine": outcome.engine, "compiled_reason": outcome.reason[:500]})
    numbers = {k: float(v) for k, v in outcome.parity.items() if isinstance(v, int | float)}
    mlflow.log_metrics({f"compiled_{k}": v for k, v in numbers.items()})


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
