"""Serving settings: configs/serving.yaml (or the file SERVING_CONFIG names), validated on
load, with a few declared environment overrides.

The YAML file is the one source of defaults: no setting has a default in code, so a key
missing from the file is an error that names it. The environment overrides exactly the
variables in ENV_OVERRIDES (pydantic-settings: init > environment > YAML); an empty value
counts as unset.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from contract.base import StrictModel
from store.config import StoreConfig

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "serving.yaml"

# Environment variable -> the setting it overrides (a path into the YAML document).
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "MODEL_NAME": ("model_name",),
    "MODEL_TAG": ("model_tag",),
    "BATCHING_MODE": ("batching", "mode"),
    "MODEL_ENGINE": ("engine",),
    "CAPTURE_DIR": ("monitoring", "directory"),
    # May hold a password: in Kubernetes it comes from a Secret, never from the ConfigMap.
    "PREDICTION_STORE_URL": ("monitoring", "store", "url"),
    "SHADOW_MODEL_TAG": ("shadow", "model_tag"),
    "API_KEY": ("api_key",),
    "API_KEY_FILE": ("api_key_file",),
}


class RiskThresholds(StrictModel):
    medium: float = Field(gt=0.0, lt=1.0)
    high: float = Field(gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> RiskThresholds:
        if self.medium >= self.high:
            raise ValueError("risk_thresholds.medium must be below risk_thresholds.high")
        return self

    def level(self, probability: float) -> str:
        if probability >= self.high:
            return "high"
        return "medium" if probability >= self.medium else "low"


BatchingMode = Literal["in_process", "service"]


class BatchingConfig(StrictModel):
    mode: BatchingMode
    max_batch_size: int = Field(ge=2, le=10_000)
    max_latency_ms: int = Field(ge=1)
    # Compiled model only: batches up to this many rows are scored on the event loop itself
    inline_max_rows: int = Field(ge=0, le=10_000)


class OverloadConfig(StrictModel):
    """Load shedding per API worker (serving/overload.py)."""

    max_in_flight: int = Field(ge=1)
    max_wait_ms: float = Field(gt=0)


class CaptureConfig(StrictModel):
    enabled: bool
    max_bytes: int = Field(ge=10_000)
    backup_count: int = Field(ge=0)
    exclude_features: list[str]


class DriftConfig(StrictModel):
    enabled: bool
    interval_s: float = Field(ge=1)
    window_rows: int = Field(ge=10)
    min_rows: int = Field(ge=10)
    drift_share: float = Field(gt=0, le=1)


class ServingStoreConfig(StoreConfig):
    """The prediction store (store/) as the service uses it."""

    enabled: bool
    # How often each replica reads online performance and the latest drift run from the
    # store for /metrics (one query per interval, not one per scrape).
    metrics_interval_s: float = Field(ge=1)
    # Labelled predictions per model version that online metrics are computed over.
    performance_window: int = Field(ge=10, le=100_000)


class MonitoringConfig(StrictModel):
    directory: str
    capture: CaptureConfig
    drift: DriftConfig
    store: ServingStoreConfig

    @property
    def capture_dir(self) -> Path:
        """`directory`, relative to the working directory."""
        return Path(self.directory).resolve()


class ShadowConfig(StrictModel):
    """A challenger scored on the champion's traffic off the request path (serving/shadow.py)."""

    enabled: bool
    # An exact BentoML tag; None: the twin labelled `mlflow_alias: challenger` of the served
    # model's name (training/lifecycle.py labels it), so no MLflow is needed at run time.
    model_tag: str | None
    # Rows waiting for the challenger, per worker; beyond this shadow work is dropped
    # (counted), so a slow challenger can never hold memory or time of the champion.
    max_queue_rows: int = Field(ge=1)
    # Regressors agree when |challenger - champion| <= this x |champion|.
    regression_rtol: float = Field(ge=0)


class ServingConfig(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    model_name: str
    # Only from the environment: an exact BentoML tag, which wins over model_name.
    model_tag: str | None = None
    max_batch_records: int = Field(ge=1)
    # compiled: the form training compiled and parity-checked, where there is one
    engine: Literal["compiled", "sklearn"]
    risk_thresholds: RiskThresholds
    batching: BatchingConfig
    overload: OverloadConfig
    api_workers: int = Field(ge=1)
    model_workers: int = Field(ge=1)
    timeout_s: float = Field(gt=0)
    # Bodies over this are refused with 413 before they are read into memory or parsed.
    max_body_bytes: int = Field(ge=1_000)
    # Browser origins allowed to call the API (CORS); empty: closed.
    cors_allow_origins: list[str]
    # BentoML's one log line per request (to stderr).
    access_log: bool
    # BentoML's OpenTelemetry middleware. Off: told to skip every request, which it otherwise
    # processes in full even when nothing is sampled (BentoML's default exports nothing).
    tracing: bool
    monitoring: MonitoringConfig
    shadow: ShadowConfig
    # Only from the environment (or a mounted Kubernetes Secret), never from the file.
    api_key: SecretStr | None = None
    api_key_file: Path | None = None

    @property
    def bentoml_tracing(self) -> dict[str, Any]:
        """The `tracing` setting of @bentoml.service: BentoML's own configuration when on."""
        return {} if self.tracing else {"excluded_urls": [".*"]}

    @model_validator(mode="after")
    def _shadow_in_process(self) -> ServingConfig:
        # The shadow hooks the in-process batcher's answers; a separate model service has
        # no place for a second model yet.
        if self.shadow.enabled and self.batching.mode != "in_process":
            raise ValueError("shadow.enabled needs batching.mode in_process")
        return self

    @property
    def served_tag(self) -> str:
        """The BentoML tag to serve: MODEL_TAG, else the model name at its newest champion."""
        return self.model_tag or model_tag(self.model_name)

    def bearer_key(self) -> str | None:
        """The API key (API_KEY, or the contents of API_KEY_FILE), or None for no key."""
        if self.api_key is not None and self.api_key.get_secret_value().strip():
            return self.api_key.get_secret_value().strip()
        if self.api_key_file is not None:
            return self.api_key_file.read_text().strip() or None
        return None

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        **_: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = Path(os.environ.get("SERVING_CONFIG") or DEFAULT_CONFIG)
        return (init_settings, DeclaredEnvSource(settings_cls),
                FileSource(settings_cls, yaml_file=path))


ENV_ONLY = ("model_tag", "api_key", "api_key_file")


class FileSource(YamlConfigSettingsSource):
    """The YAML file, which may not hold the environment-only settings (a key in a file
    that ships in the image and the ConfigMap would be a leaked key)."""

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        if found := [key for key in ENV_ONLY if key in values]:
            raise ValueError(f"{', '.join(found)}: set only from the environment "
                             f"({', '.join(k.upper() for k in found)}), not in the file")
        return values


class DeclaredEnvSource(PydanticBaseSettingsSource):
    """The variables of ENV_OVERRIDES that are set and not empty, as nested settings."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds the whole tree

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for variable, path in ENV_OVERRIDES.items():
            value = os.environ.get(variable, "").strip()
            if not value:
                continue
            node = values
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value
        return values


def model_tag(name_or_tag: str) -> str:
    """A BentoML tag from a model name (its newest champion, NAME:latest) or a tag."""
    return name_or_tag if ":" in name_or_tag else f"{name_or_tag}:latest"


def load_serving_config() -> ServingConfig:
    path = Path(os.environ.get("SERVING_CONFIG") or DEFAULT_CONFIG)
    if not path.is_file():
        raise ValueError(f"{path}: no such serving config (set SERVING_CONFIG to one)")
    try:
        return ServingConfig()
    except ValidationError as exc:
        raise ValueError(f"{path} (with the environment's {', '.join(ENV_OVERRIDES)}): "
                         f"invalid serving settings:\n{exc}") from exc
