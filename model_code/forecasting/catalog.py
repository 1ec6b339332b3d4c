"""Named forecasters the pipeline can run, as picklable factories (for worker processes).

``FORECASTERS`` are fitted per ticker in worker processes; ``PANEL_FORECASTERS`` are fitted once
on the whole universe (see :mod:`model_code.forecasting.panel`). Names are unique across both.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from model_code.forecasting.arima import Arima
from model_code.forecasting.baselines import Drift, RandomWalk
from model_code.forecasting.batch import ModelFactory
from model_code.forecasting.garch import Garch
from model_code.forecasting.mssa_rl import MssaRl, MssaRlTicker
from model_code.forecasting.panel import PanelFactory
from model_code.forecasting.samossa import Samossa

BASELINES = ("random_walk", "drift")

FORECASTERS: dict[str, ModelFactory] = {
    "random_walk": RandomWalk,
    "drift": Drift,
    "arima": Arima,
    "garch": partial(Garch, variant="garch"),
    "gjr": partial(Garch, variant="gjr"),
    "egarch": partial(Garch, variant="egarch"),
    "samossa": Samossa,
}


PANEL_FORECASTERS: dict[str, PanelFactory] = {"mssa_rl": MssaRl}

# What applies a stored fit of each model to later data (load_state / update / forecast): the
# per-ticker forecasters themselves, and a per-ticker view of each panel model's fit.
PANEL_UPDATERS: dict[str, Callable[[], object]] = {"mssa_rl": MssaRlTicker}

ALL_MODELS: tuple[str, ...] = (*FORECASTERS, *PANEL_FORECASTERS)


def _check(names: list[str] | tuple[str, ...]) -> None:
    unknown = sorted(set(names) - set(ALL_MODELS))
    if unknown:
        raise ValueError(f"unknown forecaster(s) {unknown}; available: {sorted(ALL_MODELS)}")


def select(names: list[str] | tuple[str, ...]) -> dict[str, ModelFactory]:
    """Per-ticker factories for ``names``; the baselines are always included (every report compares
    to them). Panel model names are accepted and left to :func:`select_panel`."""
    _check(names)
    wanted = list(dict.fromkeys([*BASELINES, *names]))
    return {name: FORECASTERS[name] for name in wanted if name in FORECASTERS}


def select_panel(names: list[str] | tuple[str, ...]) -> dict[str, PanelFactory]:
    """Panel (whole-universe) factories among ``names``."""
    _check(names)
    return {name: PANEL_FORECASTERS[name] for name in dict.fromkeys(names) if name in PANEL_FORECASTERS}


def updaters(names: list[str] | tuple[str, ...]) -> dict[str, Callable[[], object]]:
    """The stored-fit appliers for ``names`` (baselines always included, as in :func:`select`)."""
    _check(names)
    wanted = list(dict.fromkeys([*BASELINES, *names]))
    return {n: FORECASTERS.get(n) or PANEL_UPDATERS[n] for n in wanted}
