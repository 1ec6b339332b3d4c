"""Sensors: none exist yet, so ``all_sensors`` is empty and the definitions register none.

The accuracy-decay retraining sensor arrives in a later issue and will live here. Sensors in
this package read asset materializations and check results, never DuckDB.
"""

all_sensors: list = []
