"""Benchmarks (``make bench``): measured, printed, never part of the test suite."""
