-- Stored forecasts of both families whose target date falls in [since, through] and that were
-- made before `through`: what the monitoring window can judge (model_code/monitoring/decay.py
-- decides which count). Parameters: since, through.
SELECT as_of AS origin, ticker, model, horizon, target_date, yhat,
       lower_80, upper_80, lower_95, upper_95, 'statistical' AS family
FROM forecasts.predictions
WHERE model <> 'ensemble' AND target_date BETWEEN $1 AND $2 AND as_of < $2
UNION ALL
SELECT as_of AS origin, ticker, model, horizon, target_date, yhat,
       lower_80, upper_80, lower_95, upper_95, 'ml' AS family
FROM forecasts.ml_predictions
WHERE target_date BETWEEN $1 AND $2 AND as_of < $2
ORDER BY origin, ticker, model, horizon
