"""Batch scoring configuration (configs/scoring.yaml), validated on load."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from contract.base import StrictModel

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "scoring.yaml"


class SparkConfig(StrictModel):
    master: str = Field(min_length=1)
    app_name: str = Field(min_length=1)


class ScoringConfig(StrictModel):
    """No defaults in code: configs/scoring.yaml is the one source of them."""

    chunk_rows: int = Field(ge=1)
    workers: int = Field(ge=0, description="local engine processes; 0 = one per core")
    in_flight_per_worker: int = Field(ge=1)
    max_rejected_share: float = Field(ge=0.0, le=1.0)
    spark: SparkConfig


class ConfigError(ValueError):
    """A configuration file that cannot be read or does not validate."""


def load_scoring_config(path: str | Path = DEFAULT_CONFIG) -> ScoringConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such scoring config (default: {DEFAULT_CONFIG})")
    try:
        return ScoringConfig.model_validate(yaml.safe_load(path.read_text()))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: invalid scoring config:\n{exc}") from exc
