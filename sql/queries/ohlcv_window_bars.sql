-- Every stored bar dated in [start, end]: what a re-delivery is compared with (restatements),
-- and the stored series around the batch (jumps, gaps). Parameters: start, end.
SELECT ticker, date, open, high, low, close, adj_close, volume, source
FROM market.ohlcv
WHERE date BETWEEN $1 AND $2
ORDER BY ticker, date
