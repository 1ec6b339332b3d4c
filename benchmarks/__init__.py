"""Benchmarks (``make bench``): measured, printed, never part of the test suite."""

from pathlib import Path

# The shared data set, next to the repository (never copied into it); ``--parquet`` overrides it.
DEFAULT_PARQUET = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "us_equities_daily_2015_2019.parquet"
)
