"""Where the prediction store lives and how its writer behaves.

`monitoring.store` in configs/serving.yaml is meant to hold a StoreConfig (the service's
settings adopt it when the store is wired in); the environment variable
PREDICTION_STORE_URL overrides its `url`, so a Kubernetes Secret can hold the PostgreSQL
password instead of the image's config file.
"""

from __future__ import annotations

import os

from pydantic import ConfigDict, Field, field_validator

from contract.base import StrictModel

URL_ENV = "PREDICTION_STORE_URL"
# Nothing to set up locally: a file next to the capture directory's other data.
DEFAULT_URL = "sqlite:///monitoring_data/predictions.db"
SUPPORTED_SCHEMES = ("sqlite", "postgresql+psycopg", "postgresql")


class StoreConfig(StrictModel):
    # A refused URL must not be echoed into the error (and the log): it may hold a password.
    model_config = StrictModel.model_config | ConfigDict(hide_input_in_errors=True)

    url: str
    # Records waiting for the database; past this, new ones are dropped and counted.
    buffer_size: int = Field(ge=1)
    # Rows per INSERT, and how long a partial batch may wait before it is written.
    batch_size: int = Field(ge=1, le=10_000)
    flush_interval_s: float = Field(gt=0)
    # Predictions (with their feedback) older than this are deleted by the cleanup job.
    retention_days: float = Field(gt=0)
    exclude_features: list[str]

    @field_validator("url")
    @classmethod
    def _supported(cls, url: str) -> str:
        return check_url(url)


def check_url(url: str) -> str:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in SUPPORTED_SCHEMES:
        raise ValueError(f"store url {redact(url)!r}: scheme must be one of "
                         f"{', '.join(SUPPORTED_SCHEMES)} (e.g. postgresql+psycopg://...)")
    if scheme == "postgresql":
        # SQLAlchemy's plain postgresql:// means psycopg2, which is not installed.
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def resolve_url(configured: str | None = None) -> str:
    """PREDICTION_STORE_URL if set and not empty, else `configured`, else DEFAULT_URL."""
    return check_url(os.environ.get(URL_ENV, "").strip() or configured or DEFAULT_URL)


def redact(url: str) -> str:
    """The URL without its password, for logs and errors."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: say nothing of what it holds
        return "<unparseable url>"
