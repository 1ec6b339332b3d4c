"""The forecast and target horizons, defined once: 1, 5, 21 and 63 NYSE sessions ahead.

Targets (``fwd_ret_{h}``), every forecaster, the ML models, the ensemble and the SQL that pivots
targets by horizon all take their horizons from :data:`HORIZONS` (the SQL is checked against
it by ``tests/unit/test_horizons.py``).
"""

from __future__ import annotations

HORIZONS: tuple[int, ...] = (1, 5, 21, 63)
