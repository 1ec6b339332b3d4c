-- The forecasts the signal sources read, made in [since, through] for one horizon: the time-series
-- ensemble (source 'ts') and one ML family's champion (source 'ml', model $4). History for the
-- calibrations and the day's views in one read. Parameters: since, through, horizon, ml_model.
SELECT 'ts' AS source, as_of AS origin, ticker, model, target_date, yhat, lower_80, upper_80
FROM forecasts.predictions
WHERE model = 'ensemble' AND horizon = $3 AND as_of BETWEEN $1 AND $2
UNION ALL
SELECT 'ml' AS source, as_of AS origin, ticker, model, target_date, yhat, lower_80, upper_80
FROM forecasts.ml_predictions
WHERE model = $4 AND horizon = $3 AND as_of BETWEEN $1 AND $2
ORDER BY source, origin, ticker
