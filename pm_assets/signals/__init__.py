"""Signals layer: one routed signal per ticker and session, and how past signals did."""

from pm_assets.signals.daily import daily_signals
from pm_assets.signals.scorecard import signal_scorecard

signal_assets = [daily_signals, signal_scorecard]

__all__ = ["daily_signals", "signal_assets", "signal_scorecard"]
