-- Out-of-sample MSE of each model's stored forecasts per horizon, over forecasts made in
-- [since, as_of) whose target had closed by as_of (point in time). Parameters: as_of, since.
WITH realized AS (
    SELECT
        p.model,
        p.horizon,
        p.yhat,
        CASE p.horizon WHEN 1 THEN t.fwd_ret_1 WHEN 5 THEN t.fwd_ret_5
                       WHEN 21 THEN t.fwd_ret_21 WHEN 63 THEN t.fwd_ret_63 END AS actual,
        CASE p.horizon WHEN 1 THEN t.target_date_1 WHEN 5 THEN t.target_date_5
                       WHEN 21 THEN t.target_date_21 WHEN 63 THEN t.target_date_63 END AS closed_on
    FROM forecasts.predictions AS p
    JOIN features.targets AS t ON t.ticker = p.ticker AND t.date = p.as_of
    WHERE p.model <> 'ensemble' AND p.as_of >= $2 AND p.as_of < $1
)
SELECT model, horizon, avg((yhat - actual) * (yhat - actual)) AS mse, count(*) AS n
FROM realized
WHERE actual IS NOT NULL AND closed_on <= $1
GROUP BY model, horizon
ORDER BY model, horizon
