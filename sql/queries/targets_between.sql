-- Target rows dated on or before a date, without the bookkeeping column (ML training labels;
-- a horizon's columns are NULL until its target date closed). Parameter: the last date.
SELECT * EXCLUDE (computed_at)
FROM features.targets
WHERE date <= ?
ORDER BY ticker, date
