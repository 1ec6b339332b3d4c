-- Stored forecasts of every model but the ensemble made in [since, before): the history whose
-- realized losses weight the ensemble (model_code/forecasting/losses.py holds the rule; this
-- only prefilters). Parameters: since, before.
SELECT as_of AS origin, ticker, model, horizon, target_date, yhat
FROM forecasts.predictions
WHERE model <> 'ensemble' AND as_of >= $1 AND as_of < $2
ORDER BY origin, ticker, model, horizon
