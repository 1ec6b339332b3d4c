"""Domain logic of Portfolio Maximizer: plain, typed Python with no Dagster imports.

Every Dagster asset in ``pm_assets`` is a thin wrapper around a function in this package, so
the same code runs in tests, notebooks and benchmarks without an orchestrator.
"""
