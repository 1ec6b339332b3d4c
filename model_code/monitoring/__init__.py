"""Monitoring: rolling accuracy and its decay, data freshness, fit and model age (no Dagster)."""

from model_code.monitoring.decay import (
    FAMILIES,
    HEALTH_SCHEMA,
    KEYS,
    ML,
    POOLED,
    STATISTICAL,
    evaluate,
    health_at,
)
from model_code.monitoring.freshness import AGE_SCHEMA, FRESHNESS_SCHEMA, freshness, ml_age, statistical_age
from model_code.monitoring.pairs import (
    listed_pairs,
    merge_requests,
    pairs_markdown,
    pairs_records,
    refit_request,
)
from model_code.monitoring.settings import (
    DecaySettings,
    FreshnessSettings,
    MonitoringSettings,
    load_monitoring_settings,
)

__all__ = [
    "AGE_SCHEMA",
    "FAMILIES",
    "FRESHNESS_SCHEMA",
    "HEALTH_SCHEMA",
    "KEYS",
    "ML",
    "POOLED",
    "STATISTICAL",
    "DecaySettings",
    "FreshnessSettings",
    "MonitoringSettings",
    "evaluate",
    "freshness",
    "health_at",
    "listed_pairs",
    "load_monitoring_settings",
    "merge_requests",
    "ml_age",
    "pairs_markdown",
    "pairs_records",
    "refit_request",
    "statistical_age",
]
