"""The one strict pydantic base model for configuration and spec files."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo must not pass silently); loaded values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
