-- Stored allocations made in [since, through] (the track record the kill switch reads, and the
-- previous weights). Parameters: since, through.
SELECT * EXCLUDE (computed_at)
FROM portfolio.allocations
WHERE as_of BETWEEN ? AND ?
ORDER BY as_of, ticker
