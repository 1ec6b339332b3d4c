-- Latest stored bar of every active universe ticker (NULL when it has none) up to a date.
-- Parameter: the as-of date.
SELECT u.ticker, max(o.date) AS last_date
FROM market.universe AS u
LEFT JOIN market.ohlcv AS o ON o.ticker = u.ticker AND o.date <= ?
WHERE u.active
GROUP BY u.ticker
ORDER BY u.ticker
