-- Stored forecasts made in [since, through] joined with their realized targets, keeping only
-- those whose target had closed by `through` (point in time). Parameters: through, since.
SELECT
    p.as_of AS origin, p.ticker, p.model, p.horizon, p.target_date, p.yhat,
    p.lower_80, p.upper_80, p.lower_95, p.upper_95,
    CASE p.horizon WHEN 1 THEN t.fwd_ret_1 WHEN 5 THEN t.fwd_ret_5
                   WHEN 21 THEN t.fwd_ret_21 WHEN 63 THEN t.fwd_ret_63 END AS actual
FROM forecasts.predictions AS p
JOIN features.targets AS t ON t.ticker = p.ticker AND t.date = p.as_of
WHERE p.as_of BETWEEN $2 AND $1
  AND p.target_date <= $1
  AND (CASE p.horizon WHEN 1 THEN t.target_date_1 WHEN 5 THEN t.target_date_5
                      WHEN 21 THEN t.target_date_21 WHEN 63 THEN t.target_date_63 END) = p.target_date
ORDER BY origin, ticker, model, horizon
