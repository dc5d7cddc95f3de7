"""Alias of contract.spec, where the data set specs live now (issue 12).

Kept so that code and pickles written before the move still import: pipelines registered
before it may reference training.* names. It ships in the Bento for that reason. New code
imports contract.spec.
"""

from contract.spec import (
    SELECTION_METRICS,
    SPEC_DIR,
    DatasetSpec,
    EngineeredFeature,
    FeatureSpec,
    FeatureType,
    SourceSpec,
    SpecError,
    StrictModel,
    TargetSpec,
    Task,
    available_datasets,
    canonical_value,
    load_dataset_spec,
)

__all__ = [
    "SELECTION_METRICS",
    "SPEC_DIR",
    "DatasetSpec",
    "EngineeredFeature",
    "FeatureSpec",
    "FeatureType",
    "SourceSpec",
    "SpecError",
    "StrictModel",
    "TargetSpec",
    "Task",
    "available_datasets",
    "canonical_value",
    "load_dataset_spec",
]
