-- Bars held as unconfirmed jumps that still wait for their next bar: quarantine rows with the
-- reason 'unconfirmed_jump' dated before the window and after the ticker's last stored bar
-- before it (the latest copy per ticker and date). Parameter: the window's first date.
SELECT
    q.quarantine_id, q.ticker, q.date, q.open, q.high, q.low, q.close, q.adj_close, q.volume,
    q.source, q.ingested_at AS held_at
FROM market.quarantine AS q
LEFT JOIN (
    SELECT ticker, max(date) AS last_date FROM market.ohlcv WHERE date < $1 GROUP BY ticker
) AS s USING (ticker)
WHERE q.reason = 'unconfirmed_jump'
  AND q.date < $1
  AND (s.last_date IS NULL OR q.date > s.last_date)
QUALIFY row_number() OVER (PARTITION BY q.ticker, q.date ORDER BY q.ingested_at DESC, q.quarantine_id) = 1
ORDER BY q.ticker, q.date
