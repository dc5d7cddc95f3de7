"""Batch scoring of large files with a registered model, locally or on Spark."""
