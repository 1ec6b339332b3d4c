"""Dagster assets and asset checks, one sub-package per warehouse layer."""
