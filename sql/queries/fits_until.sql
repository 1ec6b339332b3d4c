-- Stored fits a run of as_of sessions [start, end] can use: per (ticker, model) the latest fit
-- whose window ends on or before start, and every fit whose window ends in (start, end] (the
-- rule "latest window_end <= as_of" is applied per session in model_code/forecasting/stored.py).
-- Parameters: start, end.
SELECT ticker, model, fitted_at, window_start, window_end, n_obs, params, diagnostics, artifact_path
FROM models.fits
WHERE window_end <= $1
QUALIFY row_number() OVER (PARTITION BY ticker, model ORDER BY window_end DESC) = 1
UNION ALL
SELECT ticker, model, fitted_at, window_start, window_end, n_obs, params, diagnostics, artifact_path
FROM models.fits
WHERE window_end > $1 AND window_end <= $2
ORDER BY ticker, model, window_end
