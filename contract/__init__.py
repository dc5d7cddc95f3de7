"""The contract between training and serving: data set specs and the feature transformer.

Training writes pipelines whose first step (contract.features.SpecFeatures) is configured from
the spec (contract.spec); the service unpickles those pipelines and builds its request models
from the same spec. Keep this package light (pydantic, yaml, numpy, pandas, scikit-learn):
it ships inside the Bento.
"""
