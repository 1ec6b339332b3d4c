-- Every stored bar dated on or before a date (the point-in-time input of features and
-- targets). Parameter: the as-of date.
SELECT ticker, date, open, high, low, close, adj_close, volume
FROM market.ohlcv
WHERE date <= ?
ORDER BY ticker, date
