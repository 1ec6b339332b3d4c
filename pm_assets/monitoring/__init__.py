"""Monitoring layer: rolling accuracy and decay of every forecaster, data freshness, fit age."""

from pm_assets.monitoring.freshness import monitoring_freshness
from pm_assets.monitoring.model_health import model_health

monitoring_assets = [model_health, monitoring_freshness]

__all__ = ["model_health", "monitoring_assets", "monitoring_freshness"]
