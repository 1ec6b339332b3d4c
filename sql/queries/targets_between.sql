-- Target rows dated in [start, end] (inclusive), without the bookkeeping column: ML training
-- labels (a horizon's columns are NULL until its target date closed). Parameters: start, end.
SELECT * EXCLUDE (computed_at)
FROM features.targets
WHERE date BETWEEN ? AND ?
ORDER BY ticker, date
