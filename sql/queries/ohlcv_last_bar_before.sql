-- The last stored bar of each ticker strictly before a date: context for returns and gaps
-- at the start of an ingestion window. Parameter: the window's first date.
-- (The whole row of that bar: arg_max would skip a NULL adj_close and return an older one.)
SELECT ticker, date, close, adj_close
FROM market.ohlcv
WHERE date < ?
QUALIFY row_number() OVER (PARTITION BY ticker ORDER BY date DESC) = 1
