-- Stored bars in [start, end] that break a row rule. After quarantine every count must be 0;
-- a non-zero count means bad rows reached market.ohlcv. Parameters: start, end, min_price.
SELECT
    count(*)                                                                  AS n_rows,
    count(DISTINCT ticker)                                                    AS n_tickers,
    count(*) FILTER (WHERE least(open, high, low, close, adj_close) <= 0)     AS non_positive_price,
    count(*) FILTER (WHERE least(open, high, low, close, adj_close) < $3)     AS price_below_minimum,
    count(*) FILTER (WHERE high < greatest(open, close) * (1 - 1e-6))         AS high_below_open_close,
    count(*) FILTER (WHERE low > least(open, close) * (1 + 1e-6))             AS low_above_open_close,
    count(*) FILTER (WHERE volume < 0)                                        AS negative_volume,
    count(*) FILTER (WHERE NOT isfinite(close) OR NOT isfinite(coalesce(adj_close, close))) AS non_finite_value,
    count(*) FILTER (WHERE s.date IS NULL)                                    AS non_trading_day,
    count(*) - count(DISTINCT (ticker, o.date))                               AS duplicate_keys
FROM market.ohlcv AS o
LEFT JOIN market.trading_sessions AS s USING (date)
WHERE o.date BETWEEN $1 AND $2
