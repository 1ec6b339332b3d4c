"""Named forecasters the pipeline can run, as picklable factories (for worker processes)."""

from __future__ import annotations

from functools import partial

from model_code.forecasting.arima import Arima
from model_code.forecasting.baselines import Drift, RandomWalk
from model_code.forecasting.batch import ModelFactory
from model_code.forecasting.garch import Garch
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


def select(names: list[str] | tuple[str, ...]) -> dict[str, ModelFactory]:
    """Factories for ``names``; the baselines are always included (every report compares to them)."""
    unknown = sorted(set(names) - set(FORECASTERS))
    if unknown:
        raise ValueError(f"unknown forecaster(s) {unknown}; available: {sorted(FORECASTERS)}")
    wanted = list(dict.fromkeys([*BASELINES, *names]))
    return {name: FORECASTERS[name] for name in wanted}
