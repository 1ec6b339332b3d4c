-- Feature rows dated in [start, end] (inclusive), without the bookkeeping column: the input of
-- ML training (a long window) and ML scoring (the as_of sessions). Parameters: start, end.
SELECT * EXCLUDE (computed_at)
FROM features.daily
WHERE date BETWEEN ? AND ?
ORDER BY ticker, date
