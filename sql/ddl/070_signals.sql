-- Signals: one per ticker and as_of, with where it came from and why (model_code/signals/).
-- expected_return is the log return over `horizon` sessions net of the round-trip cost, signed
-- by the action (0 for HOLD, NULL for an LLM signal, which gives a direction only); confidence
-- is the calibrated probability that the direction is right; target_date is the session
-- `horizon` sessions after as_of, when the signal can be scored. computed_at is time-zone aware (UTC).
CREATE TABLE IF NOT EXISTS signals.daily (
    as_of            DATE      NOT NULL,
    ticker           VARCHAR   NOT NULL,
    horizon          INTEGER   NOT NULL,
    target_date      DATE      NOT NULL,
    action           VARCHAR   NOT NULL,
    expected_return  DOUBLE,
    confidence       DOUBLE    NOT NULL,
    source           VARCHAR   NOT NULL,
    model_id         VARCHAR,
    reason           VARCHAR   NOT NULL,
    path             VARCHAR   NOT NULL,
    computed_at      TIMESTAMPTZ,
    PRIMARY KEY (as_of, ticker)
);

-- How past signals did once their horizon closed, per source and action (net of costs), and
-- the calibration of their confidence (predicted vs realized hit rate in bins).
CREATE TABLE IF NOT EXISTS signals.scorecard (
    evaluated_through  DATE     NOT NULL,
    source             VARCHAR  NOT NULL,
    action             VARCHAR  NOT NULL,
    n                  BIGINT   NOT NULL,
    hit_rate           DOUBLE,
    hit_rate_se        DOUBLE,
    always_up_rate     DOUBLE,
    mean_net_return    DOUBLE,
    profit_factor      DOUBLE,
    mean_confidence    DOUBLE,
    PRIMARY KEY (evaluated_through, source, action)
);

CREATE TABLE IF NOT EXISTS signals.calibration (
    evaluated_through  DATE     NOT NULL,
    source             VARCHAR  NOT NULL,
    bin_low            DOUBLE   NOT NULL,
    bin_high           DOUBLE   NOT NULL,
    n                  BIGINT   NOT NULL,
    mean_confidence    DOUBLE,
    hit_rate           DOUBLE,
    PRIMARY KEY (evaluated_through, source, bin_low)
);
