"""Serving configuration (configs/serving.yaml), validated on load; env vars choose the model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "serving.yaml"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RiskThresholds(StrictModel):
    medium: float = Field(default=0.3, gt=0.0, lt=1.0)
    high: float = Field(default=0.7, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> RiskThresholds:
        if self.medium >= self.high:
            raise ValueError("risk_thresholds.medium must be below risk_thresholds.high")
        return self

    def level(self, probability: float) -> str:
        if probability >= self.high:
            return "high"
        return "medium" if probability >= self.medium else "low"


BatchingMode = Literal["in_process", "service", "off"]


class BatchingConfig(StrictModel):
    mode: BatchingMode = "service"
    max_batch_size: int = Field(default=64, ge=2, le=10_000)
    max_latency_ms: int = Field(default=10_000, ge=1)


class OverloadConfig(StrictModel):
    """Load shedding per API worker (serving/overload.py)."""

    max_in_flight: int = Field(default=48, ge=1)
    max_wait_ms: float = Field(default=500, gt=0)


class CaptureConfig(StrictModel):
    enabled: bool = True
    max_bytes: int = Field(default=10_000_000, ge=10_000)
    backup_count: int = Field(default=5, ge=0)
    exclude_features: list[str] = Field(default_factory=list)


class DriftConfig(StrictModel):
    enabled: bool = True
    interval_s: float = Field(default=300, ge=1)
    window_rows: int = Field(default=1000, ge=10)
    min_rows: int = Field(default=50, ge=10)
    drift_share: float = Field(default=0.5, gt=0, le=1)


class MonitoringConfig(StrictModel):
    directory: str = "monitoring_data"
    capture: CaptureConfig = CaptureConfig()
    drift: DriftConfig = DriftConfig()

    @property
    def capture_dir(self) -> Path:
        """CAPTURE_DIR if set, else `directory` (relative to the working directory)."""
        return Path(os.environ.get("CAPTURE_DIR") or self.directory).resolve()


class ServingConfig(StrictModel):
    model_name: str
    max_batch_records: int = Field(default=1000, ge=1)
    risk_thresholds: RiskThresholds = RiskThresholds()
    batching: BatchingConfig = BatchingConfig()
    overload: OverloadConfig = OverloadConfig()
    api_workers: int = Field(default=1, ge=1)
    model_workers: int = Field(default=1, ge=1)
    timeout_s: float = Field(default=30, gt=0)
    # Bodies over this are refused with 413 before they are read into memory or parsed.
    max_body_bytes: int = Field(default=4_000_000, ge=1_000)
    # Browser origins allowed to call the API (CORS); empty: closed.
    cors_allow_origins: list[str] = Field(default_factory=list)
    monitoring: MonitoringConfig = MonitoringConfig()

    @property
    def batching_mode(self) -> BatchingMode:
        """BATCHING_MODE (in_process, service, off) overrides batching.mode."""
        override = os.environ.get("BATCHING_MODE", "").strip()
        if not override:
            return self.batching.mode
        if override not in ("in_process", "service", "off"):
            raise ValueError(f"BATCHING_MODE={override!r}: use in_process, service or off")
        return cast(BatchingMode, override)

    @property
    def model_tag(self) -> str:
        """The BentoML tag to serve: MODEL_TAG, else MODEL_NAME or model_name at :latest."""
        if tag := os.environ.get("MODEL_TAG"):
            return tag
        name = os.environ.get("MODEL_NAME") or self.model_name
        return name if ":" in name else f"{name}:latest"


def load_serving_config(path: str | Path | None = None) -> ServingConfig:
    path = Path(path or os.environ.get("SERVING_CONFIG") or DEFAULT_CONFIG)
    try:
        return ServingConfig.model_validate(yaml.safe_load(path.read_text()))
    except FileNotFoundError as exc:
        raise ValueError(f"{path}: no such serving config") from exc
    except (yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"{path}: invalid serving config:\n{exc}") from exc
