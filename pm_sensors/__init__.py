"""Sensors. They never open DuckDB: they read asset materializations and check results.

The accuracy-decay retraining sensor arrives with the forecasting issues; this package is
where it lives.
"""

all_sensors: list = []
