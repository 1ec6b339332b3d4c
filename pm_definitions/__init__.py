"""The Dagster code location of Portfolio Maximizer (see :mod:`pm_definitions.definitions`)."""
