-- Stored signals made in [since, through] (calibration of the LLM source, the persistence
-- check, the scorecard). Parameters: since, through.
SELECT * EXCLUDE (computed_at)
FROM signals.daily
WHERE as_of BETWEEN ? AND ?
ORDER BY ticker, as_of
