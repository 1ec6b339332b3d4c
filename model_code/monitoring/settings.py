"""Monitoring thresholds: the ``decay:`` and ``freshness:`` sections of ``config/monitoring.yaml``.

Defaults: a hit rate below 0.45 (the seed's ``emergency_stop_accuracy``, the allocation's
emergency stop :attr:`RiskLimits.min_hit_rate`) or an RMSE ratio against the random walk above
1.1, over the forecasts whose targets closed in the last 63 sessions, judged only on at least
20 realized forecasts. Unknown keys are refused, so a typo fails at load instead of silently
keeping a default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from model_code.allocation.settings import RiskLimits

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "config" / "monitoring.yaml"


@dataclass(frozen=True)
class DecaySettings:
    """When a (model, ticker, horizon) has decayed.

    ``window_sessions``: forecasts whose target closed in this many sessions ending at as_of
    count. ``min_hit_rate``: directional hit rate (share in [0, 1]) below which it decayed.
    ``max_rmse_ratio``: RMSE over the random walk's RMSE on the same forecasts above which it
    decayed. ``min_observations``: realized forecasts needed before either is judged.
    """

    window_sessions: int = 63
    min_hit_rate: float = RiskLimits.min_hit_rate
    max_rmse_ratio: float = 1.1
    min_observations: int = 20

    def __post_init__(self) -> None:
        if not isinstance(self.window_sessions, int) or self.window_sessions < 1:
            raise ValueError(f"decay.window_sessions must be an integer >= 1, got {self.window_sessions!r}")
        if not 0.0 <= self.min_hit_rate <= 1.0:
            raise ValueError(f"decay.min_hit_rate must be in [0, 1], got {self.min_hit_rate!r}")
        if not (math.isfinite(self.max_rmse_ratio) and self.max_rmse_ratio > 0):
            raise ValueError(f"decay.max_rmse_ratio must be a finite ratio > 0, got {self.max_rmse_ratio!r}")
        if not isinstance(self.min_observations, int) or self.min_observations < 1:
            raise ValueError(f"decay.min_observations must be an integer >= 1, got {self.min_observations!r}")


@dataclass(frozen=True)
class FreshnessSettings:
    """``stale_after_sessions``: sessions without a bar before a ticker is stale."""

    stale_after_sessions: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.stale_after_sessions, int) or self.stale_after_sessions < 0:
            raise ValueError(
                f"freshness.stale_after_sessions must be an integer >= 0, got {self.stale_after_sessions!r}"
            )


@dataclass(frozen=True)
class MonitoringSettings:
    decay: DecaySettings = DecaySettings()
    freshness: FreshnessSettings = FreshnessSettings()


def _parse(kind: type, name: str, section: Any) -> Any:
    if section is None:
        return kind()
    if not isinstance(section, dict):
        raise ValueError(f"{name}: must be a mapping, got {type(section).__name__}")
    known = {f.name: f for f in fields(kind)}
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise ValueError(f"{name}: unknown key(s) {unknown}; known: {sorted(known)}")
    values = {}
    for key, value in section.items():
        want = type(getattr(kind(), key))
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (want is int and not isinstance(value, int))
        ):
            raise ValueError(f"{name}.{key} must be {want.__name__}, got {value!r}")
        values[key] = want(value)
    return kind(**values)


def load_monitoring_settings(path: str | Path = DEFAULT_PATH) -> MonitoringSettings:
    """The ``decay:`` and ``freshness:`` sections of the YAML file at ``path``.

    A missing section gives its defaults; a missing file raises ``FileNotFoundError``; a
    malformed one raises ``ValueError`` naming the key and the file.
    """
    path = Path(path)
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping of sections, got {type(doc).__name__}")
    try:
        return MonitoringSettings(
            decay=_parse(DecaySettings, "decay", doc.get("decay")),
            freshness=_parse(FreshnessSettings, "freshness", doc.get("freshness")),
        )
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
