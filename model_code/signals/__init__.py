"""Signals: one decision per ticker and session, its source, calibrated confidence and reason."""
