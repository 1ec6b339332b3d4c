-- Target weights decided at each session's close (model_code/allocation/), filled at the next
-- bar by the execution model. One row per signal ticker (and safe-sleeve name held) plus a CASH
-- row, so the weights of an as_of sum to 1. method is the one asked for, method_used the one
-- that produced the weights (a fallback, or flat when a halt put everything in cash);
-- binding_limit the first risk limit that changed the row.
CREATE TABLE IF NOT EXISTS portfolio.allocations (
    as_of            DATE     NOT NULL,
    ticker           VARCHAR  NOT NULL,
    weight           DOUBLE   NOT NULL,
    sleeve           VARCHAR  NOT NULL,
    method           VARCHAR  NOT NULL,
    method_used      VARCHAR  NOT NULL,
    fallback_reason  VARCHAR,
    reason           VARCHAR,
    binding_limit    VARCHAR  NOT NULL,
    computed_at      TIMESTAMPTZ,
    PRIMARY KEY (as_of, ticker)
);
