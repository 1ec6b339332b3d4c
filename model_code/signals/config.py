"""The ``llm:`` section of ``config/signals.yaml``: flags and budgets of the Ollama fallback.

Other sections of that file belong to other loaders and are ignored here. Unknown keys inside
``llm:`` are refused, so a typo fails at load instead of silently keeping a default.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "config" / "signals.yaml"


@dataclass(frozen=True)
class LlmSettings:
    """What the LLM fallback may do in one run.

    ``enabled``: the router asks the LLM at all. ``models``: Ollama model names in failover order.
    ``call_timeout_s``: per-call latency budget in seconds (also the HTTP timeout).
    ``run_budget_s`` / ``max_calls``: all LLM calls of one run together, in seconds and calls.
    ``min_tokens_per_s``: generation speed floor (``eval_count / eval_duration``); slower fails over.
    ``max_tickers``: at most this many tickers a run are sent to the LLM.
    ``anonymize``: the prompt names a neutral label instead of the ticker.
    ``knowledge_cutoff``: LLM signals count only for sessions strictly after this date, since
    the models' weights were trained on what happened up to it.
    """

    enabled: bool = False
    models: tuple[str, ...] = ("llama3.2:3b", "qwen2.5:3b")
    call_timeout_s: float = 5.0
    run_budget_s: float = 60.0
    max_calls: int = 50
    min_tokens_per_s: float = 5.0
    max_tickers: int = 20
    anonymize: bool = True
    knowledge_cutoff: dt.date = dt.date(2024, 9, 30)

    def __post_init__(self) -> None:
        if not self.models or not all(isinstance(m, str) and m.strip() for m in self.models):
            raise ValueError(f"llm.models must be a non-empty list of model names, got {self.models!r}")
        for name in ("call_timeout_s", "run_budget_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"llm.{name} must be a finite number of seconds > 0, got {value!r}")
        if not (math.isfinite(self.min_tokens_per_s) and self.min_tokens_per_s >= 0):
            raise ValueError(f"llm.min_tokens_per_s must be >= 0, got {self.min_tokens_per_s!r}")
        for name in ("max_calls", "max_tickers"):
            if getattr(self, name) < 0:
                raise ValueError(f"llm.{name} must be >= 0, got {getattr(self, name)!r}")

    def counts_on(self, session: dt.date) -> bool:
        """Whether an LLM signal for ``session`` may count (backtests, scorecard): after the cutoff."""
        return session > self.knowledge_cutoff


def _typed(name: str, value: Any) -> Any:
    """``value`` as the type of field ``name``; a wrong type raises ``ValueError`` naming the key."""
    if name in ("enabled", "anonymize"):
        if not isinstance(value, bool):
            raise ValueError(f"llm.{name} must be true or false, got {value!r}")
        return value
    if name == "models":
        if not isinstance(value, list):
            raise ValueError(f"llm.models must be a list of model names, got {value!r}")
        return tuple(str(m) for m in value)
    if name in ("max_calls", "max_tickers"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"llm.{name} must be an integer, got {value!r}")
        return value
    if name == "knowledge_cutoff":
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"llm.knowledge_cutoff must be a date YYYY-MM-DD, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"llm.{name} must be a number, got {value!r}")
    return float(value)


def parse_llm_settings(section: Any) -> LlmSettings:
    """:class:`LlmSettings` from the mapping under ``llm:`` (None: every default)."""
    if section is None:
        return LlmSettings()
    if not isinstance(section, dict):
        raise ValueError(f"llm: must be a mapping, got {type(section).__name__}")
    known = {f.name for f in fields(LlmSettings)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ValueError(f"llm: unknown key(s) {unknown}; known: {sorted(known)}")
    return LlmSettings(**{name: _typed(name, value) for name, value in section.items()})


def load_llm_settings(path: str | Path = DEFAULT_PATH) -> LlmSettings:
    """The ``llm:`` section of the YAML file at ``path`` (default ``config/signals.yaml``).

    A file without an ``llm:`` section gives every default; a missing file raises
    ``FileNotFoundError``; a malformed section raises ``ValueError`` naming the key and file.
    """
    path = Path(path)
    section = _section(path, "llm")
    try:
        return parse_llm_settings(section)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _section(path: Path, name: str) -> Any:
    """The ``name:`` section of the YAML file (None when absent); the file must be a mapping."""
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping of sections, got {type(doc).__name__}")
    return doc.get(name)


ROUTER_KEYS = {
    "ts": bool,
    "ml": bool,
    "primary": str,
    "min_confidence": float,
    "horizon": int,
    "commission_bps": float,
    "slippage_bps": float,
    "ml_model": str,
    "calibration_lookback": int,
}


def load_router_defaults(path: str | Path = DEFAULT_PATH) -> dict[str, Any]:
    """The ``router:`` section of ``config/signals.yaml`` as typed values (keys :data:`ROUTER_KEYS`).

    The ``signals/daily`` asset's run config defaults come from here, so a file edit changes
    every run and run config overrides one run. Unknown keys and wrong types raise
    ``ValueError`` naming the key and file; a file without the section gives ``{}``.
    """
    path = Path(path)
    section = _section(path, "router")
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ValueError(f"{path}: router: must be a mapping, got {type(section).__name__}")
    unknown = sorted(set(section) - set(ROUTER_KEYS))
    if unknown:
        raise ValueError(f"{path}: router: unknown key(s) {unknown}; known: {sorted(ROUTER_KEYS)}")
    out: dict[str, Any] = {}
    for key, value in section.items():
        kind = ROUTER_KEYS[key]
        if not _is_a(kind, value):
            raise ValueError(f"{path}: router.{key} must be {kind.__name__}, got {value!r}")
        out[key] = float(value) if kind is float else value
    return out


def _is_a(kind: type, value: Any) -> bool:
    """YAML scalar type check: a bool is only a bool, an int is a fine float."""
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, int | float) if kind is float else isinstance(value, kind)
