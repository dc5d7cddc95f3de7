"""Alias of contract.features, where the pipeline's first step lives now (issue 12).

Every pipeline pickled before the move names its first step training.features.SpecFeatures;
unpickling looks the class up here, so this alias must stay (and ship in the Bento) while
such models may be served. tests/training/test_features.py proves an old-style pickle loads.
New code imports contract.features.
"""

from contract.features import LARGEST, SpecFeatures

__all__ = ["LARGEST", "SpecFeatures"]
