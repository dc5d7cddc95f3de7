"""The store URL: the configured one, PREDICTION_STORE_URL over it, SQLite by default."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from store import DEFAULT_URL, StoreConfig, resolve_url
from store.config import redact

SETTINGS = {"buffer_size": 10_000, "batch_size": 500, "flush_interval_s": 1.0,
            "retention_days": 30, "exclude_features": []}


def test_environment_overrides_the_configured_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREDICTION_STORE_URL", raising=False)
    assert resolve_url() == DEFAULT_URL and DEFAULT_URL.startswith("sqlite:///")
    assert resolve_url("sqlite:////data/p.db") == "sqlite:////data/p.db"
    monkeypatch.setenv("PREDICTION_STORE_URL", "  ")  # empty counts as unset
    assert resolve_url("sqlite:////data/p.db") == "sqlite:////data/p.db"
    monkeypatch.setenv("PREDICTION_STORE_URL", "postgresql+psycopg://u:pw@db:5432/store")
    assert resolve_url("sqlite:////data/p.db") == "postgresql+psycopg://u:pw@db:5432/store"


def test_plain_postgresql_means_psycopg_and_unknown_schemes_are_refused() -> None:
    config = StoreConfig(url="postgresql://u@db/store", **SETTINGS)
    assert config.url == "postgresql+psycopg://u@db/store"
    with pytest.raises(ValidationError, match="scheme must be one of") as refused:
        StoreConfig(url="mysql://u:secret@db/store", **SETTINGS)
    assert "secret" not in str(refused.value)
    with pytest.raises(ValidationError, match="buffer_size"):
        StoreConfig(url=DEFAULT_URL, **(SETTINGS | {"buffer_size": 0}))


def test_passwords_are_redacted() -> None:
    assert "secret" not in redact("postgresql+psycopg://u:secret@db/store")
    assert "secret" not in redact("::secret::")
