-- (ticker, model) pairs whose fit failed on a session in [since, before): without a usable stored
-- fit, forecasts/predictions leaves them to the next forecasts/fits refit instead of refitting
-- them every night (model_code/forecasting/stored.py). Parameters: since, before.
SELECT DISTINCT ticker, model
FROM forecasts.fit_log
WHERE status = 'failed' AND as_of >= $1 AND as_of < $2
ORDER BY ticker, model
