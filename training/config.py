"""Training configuration (configs/training.yaml), validated on load."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from contract.base import StrictModel
from contract.spec import Task

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "training.yaml"


class CandidateConfig(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    estimator: str = Field(description="import path of a scikit-learn estimator class")
    params: dict[str, Any] = Field(default_factory=dict)
    search: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("estimator")
    @classmethod
    def _importable(cls, path: str) -> str:
        estimator_class(path)
        return path


def estimator_class(path: str) -> type:
    module, _, name = path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"cannot import estimator '{path}': {exc}") from exc
    if not hasattr(found, "fit"):
        raise ValueError(f"'{path}' is not an estimator (it has no fit method)")
    return found


class PromotionConfig(StrictModel):
    min_improvement: float = Field(default=0.0, ge=0.0)
    # A version that loses the gate gets the MLflow alias `challenger` (shadow, canary).
    challenger_on_reject: bool = True


class CompileConfig(StrictModel):
    """The compiled serving form made at training time (training/compile.py)."""

    enabled: bool = True
    # Largest difference of a probability or value from the pipeline's on the hold-out rows
    parity_tolerance: float = Field(default=1e-6, gt=0.0, le=1e-3)
    # Tree ensembles: the forms to try, in order; the first within parity is kept.
    tree_engines: list[Literal["onnx", "treelite"]] = Field(
        default=["onnx", "treelite"], min_length=1)


class DatasetOverrides(StrictModel):
    test_size: float | None = Field(default=None, gt=0.0, lt=0.5)
    cv_folds: int | None = Field(default=None, ge=2, le=20)


class TrainingConfig(StrictModel):
    seed: int = 42
    test_size: float = Field(default=0.2, gt=0.0, lt=0.5)
    cv_folds: int = Field(default=5, ge=2, le=20)
    n_jobs: int = Field(default=1, ge=-1)
    reference_sample_size: int = Field(default=1000, ge=10)
    permutation_repeats: int = Field(default=5, ge=1)
    permutation_max_rows: int = Field(default=2000, ge=10)
    promotion: PromotionConfig = PromotionConfig()
    compile: CompileConfig = CompileConfig()
    candidates: dict[Task, list[CandidateConfig]]
    datasets: dict[str, DatasetOverrides] = Field(default_factory=dict)

    @field_validator("candidates")
    @classmethod
    def _every_task(cls, value: dict[Task, list[CandidateConfig]]) -> dict:
        for task in ("binary", "multiclass", "regression"):
            if not value.get(task):  # type: ignore[call-overload]
                raise ValueError(f"no candidates for task '{task}'")
        return value

    def for_dataset(self, name: str) -> TrainingConfig:
        """This config with the data set's overrides applied."""
        overrides = self.datasets.get(name)
        if overrides is None:
            return self
        return self.model_copy(update=overrides.model_dump(exclude_none=True))


class ConfigError(ValueError):
    """A configuration file that cannot be read or does not validate."""


def load_training_config(path: str | Path = DEFAULT_CONFIG) -> TrainingConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such training config (default: {DEFAULT_CONFIG})")
    try:
        return TrainingConfig.model_validate(yaml.safe_load(path.read_text()))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: invalid training config:\n{exc}") from exc
