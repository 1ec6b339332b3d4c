-- Market layer: validated daily bars, quarantined rows, and the universe.

-- Accepted daily bars. close is the raw close, adj_close the split/dividend-adjusted close.
-- Close-only series keep open/high/low/volume NULL; nothing fills them in.
CREATE TABLE IF NOT EXISTS market.ohlcv (
    ticker       VARCHAR   NOT NULL,
    date         DATE      NOT NULL,
    open         DOUBLE,
    high         DOUBLE,
    low          DOUBLE,
    close        DOUBLE    NOT NULL,
    adj_close    DOUBLE,
    volume       DOUBLE,
    source       VARCHAR   NOT NULL,
    ingested_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (ticker, date)
);

-- Rows the validator rejected, with the reason and the values as received. quarantine_id is a
-- hash of (source, reason, the raw values), so re-ingesting the same bad row is a no-op.
CREATE TABLE IF NOT EXISTS market.quarantine (
    quarantine_id VARCHAR   PRIMARY KEY,
    ticker        VARCHAR,
    date          DATE,
    source        VARCHAR   NOT NULL,
    reason        VARCHAR   NOT NULL,
    detail        VARCHAR,
    open          DOUBLE,
    high          DOUBLE,
    low           DOUBLE,
    close         DOUBLE,
    adj_close     DOUBLE,
    volume        DOUBLE,
    ingested_at   TIMESTAMP NOT NULL
);

-- Series-level findings that do not reject a row (calendar gaps, stale tickers, zero volume,
-- jumps, detected splits). Keyed by what was found, where, so re-runs overwrite.
CREATE TABLE IF NOT EXISTS market.data_quality (
    ticker      VARCHAR   NOT NULL,
    date        DATE      NOT NULL,
    kind        VARCHAR   NOT NULL,
    severity    VARCHAR   NOT NULL,
    detail      VARCHAR,
    found_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (ticker, date, kind)
);

-- Restatements: every re-delivery of a stored bar whose values differ from it (beyond a relative
-- 1e-9), with the old and new value of each field and what was done: 'replaced' (the new values
-- were stored) or 'quarantined' (the stored bar was kept; the new one is in market.quarantine).
CREATE TABLE IF NOT EXISTS market.ohlcv_revisions (
    ticker         VARCHAR   NOT NULL,
    date           DATE      NOT NULL,
    old_open       DOUBLE,
    new_open       DOUBLE,
    old_high       DOUBLE,
    new_high       DOUBLE,
    old_low        DOUBLE,
    new_low        DOUBLE,
    old_close      DOUBLE,
    new_close      DOUBLE,
    old_adj_close  DOUBLE,
    new_adj_close  DOUBLE,
    old_volume     DOUBLE,
    new_volume     DOUBLE,
    old_source     VARCHAR,
    source         VARCHAR   NOT NULL,
    action         VARCHAR   NOT NULL,
    ingested_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (ticker, date, ingested_at)
);

-- The tracked universe as last configured. Tickers dropped from the configuration stay, with
-- active = false, so their stored history keeps its meaning.
CREATE TABLE IF NOT EXISTS market.universe (
    ticker         VARCHAR   PRIMARY KEY,
    pinned_source  VARCHAR,
    active         BOOLEAN   NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);

-- Coverage of each ticker in the accepted bars: derived, so it is never out of date.
CREATE OR REPLACE VIEW market.ticker_coverage AS
SELECT
    ticker,
    min(date)                       AS first_date,
    max(date)                       AS last_date,
    count(*)                        AS n_bars,
    count(high) = count(*)          AS has_ohlc,
    arg_max(source, date)           AS last_source
FROM market.ohlcv
GROUP BY ticker;

-- Trading sessions of the exchange calendar (XNYS), written for every ingested window, so SQL
-- can count sessions (gaps, staleness, horizons) without calendar logic.
CREATE TABLE IF NOT EXISTS market.trading_sessions (
    date     DATE    PRIMARY KEY,
    ordinal  INTEGER NOT NULL
);
