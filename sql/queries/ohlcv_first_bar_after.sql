-- The first stored bar of each ticker strictly after a date: context for the last bars of a
-- re-ingested window (a jump it decides, a gap it closes). Parameter: the window's last date.
SELECT ticker, date, close, adj_close, volume
FROM market.ohlcv
WHERE date > ?
QUALIFY row_number() OVER (PARTITION BY ticker ORDER BY date) = 1
