import numpy as np

from model_code.forecasting.base import FitDiagnostics, FitFailed, Forecast, gaussian_forecast
from model_code.forecasting.batch import forecast_ticker, forecast_universe


class MeanModel:
    """Forecasts the sample mean times h; module-level so worker processes can unpickle it."""

    name = "mean"

    def fit(self, returns):
        if len(returns) < 10:
            raise FitFailed("mean: needs at least 10 returns")
        self.mu, self.sd = float(np.mean(returns)), float(np.std(returns))
        return FitDiagnostics(model=self.name, n_obs=len(returns))

    def forecast(self, horizons=(1, 5)):
        return [gaussian_forecast(self.name, h, self.mu * h, self.sd * np.sqrt(h)) for h in horizons]


class BrokenModel:
    name = "broken"

    def fit(self, returns):
        raise ZeroDivisionError("boom")

    def forecast(self, horizons=(1,)):  # pragma: no cover - never reached
        return []


def test_a_failing_model_or_ticker_is_recorded_and_does_not_stop_the_others():
    rng = np.random.default_rng(0)
    series = {"AAA": rng.normal(0.001, 0.01, 300), "BBB": rng.normal(size=5), "CCC": rng.normal(size=300)}
    models = {"mean": MeanModel, "broken": BrokenModel}
    results = {r.ticker: r for r in forecast_universe(series, models, (1, 5), workers=2)}
    assert set(results) == {"AAA", "BBB", "CCC"}
    assert results["AAA"].errors == {"broken": "ZeroDivisionError: boom"}
    assert results["BBB"].errors["mean"] == "mean: needs at least 10 returns"
    aaa = results["AAA"].forecasts
    assert [f.horizon for f in aaa] == [1, 5] and all(isinstance(f, Forecast) for f in aaa)
    assert np.isclose(aaa[1].yhat, 5 * series["AAA"].mean())


def test_parallel_and_in_process_results_are_identical():
    rng = np.random.default_rng(1)
    series = {f"T{i}": rng.normal(size=200) for i in range(6)}
    one = forecast_universe(series, {"mean": MeanModel}, (1, 21), workers=1)
    two = forecast_universe(series, {"mean": MeanModel}, (1, 21), workers=2)
    assert [r.forecasts for r in one] == [r.forecasts for r in two]
    assert forecast_ticker("X", series["T0"], {"mean": MeanModel}).forecasts[0].model == "mean"
