-- The last stored bar of each ticker strictly before a date: context for returns and gaps
-- at the start of an ingestion window. Parameter: the window's first date.
SELECT
    ticker,
    max(date)                   AS date,
    arg_max(close, date)        AS close,
    arg_max(adj_close, date)    AS adj_close
FROM market.ohlcv
WHERE date < ?
GROUP BY ticker
