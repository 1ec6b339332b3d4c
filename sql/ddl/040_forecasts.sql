-- Forecasts layer. yhat and the intervals are cumulative log returns from the as_of close
-- to the close of target_date (horizon sessions later), comparable with features.targets.

CREATE TABLE IF NOT EXISTS forecasts.predictions (
    as_of         DATE     NOT NULL,
    ticker        VARCHAR  NOT NULL,
    model         VARCHAR  NOT NULL,
    horizon       INTEGER  NOT NULL,
    target_date   DATE     NOT NULL,
    yhat          DOUBLE   NOT NULL,
    lower_80      DOUBLE,
    upper_80      DOUBLE,
    lower_95      DOUBLE,
    upper_95      DOUBLE,
    vol_forecast  DOUBLE,
    fit_seconds   DOUBLE,
    PRIMARY KEY (as_of, ticker, model, horizon)
);

-- Every fit attempted: ok, or failed with its error (a failing ticker never stops the rest).
CREATE TABLE IF NOT EXISTS forecasts.fit_log (
    as_of        DATE     NOT NULL,
    ticker       VARCHAR  NOT NULL,
    model        VARCHAR  NOT NULL,
    status       VARCHAR  NOT NULL CHECK (status IN ('ok', 'failed')),
    error        VARCHAR,
    n_obs        BIGINT,
    warnings     BIGINT,
    fit_seconds  DOUBLE,
    params       VARCHAR,
    PRIMARY KEY (as_of, ticker, model)
);

-- The weights the ensemble used at each as_of, from each model's out-of-sample MSE over
-- forecasts whose target had closed by then (NULL mse: no history yet, equal weights).
CREATE TABLE IF NOT EXISTS forecasts.ensemble_weights (
    as_of       DATE     NOT NULL,
    horizon     INTEGER  NOT NULL,
    model       VARCHAR  NOT NULL,
    weight      DOUBLE   NOT NULL,
    mse         DOUBLE,
    confidence  DOUBLE,
    PRIMARY KEY (as_of, horizon, model)
);

-- Out-of-sample accuracy of stored forecasts whose targets had closed, over a trailing window
-- of as_of sessions ending at evaluated_through. ticker = '*' rows pool the universe and carry
-- the Diebold-Mariano test (HLN-corrected) against the random walk on the per-as_of
-- cross-sectional mean squared error; per-ticker rows carry the accuracy metrics only.
CREATE TABLE IF NOT EXISTS forecasts.accuracy (
    evaluated_through  DATE     NOT NULL,
    model              VARCHAR  NOT NULL,
    ticker             VARCHAR  NOT NULL,
    horizon            INTEGER  NOT NULL,
    window_start       DATE     NOT NULL,
    n                  BIGINT,
    rmse               DOUBLE,
    mae                DOUBLE,
    bias               DOUBLE,
    tracking_error     DOUBLE,
    smape              DOUBLE,
    hit_n              BIGINT,
    hit_rate           DOUBLE,
    hit_se             DOUBLE,
    coverage_80        DOUBLE,
    coverage_95        DOUBLE,
    rmse_ratio         DOUBLE,
    dm_stat            DOUBLE,
    dm_p               DOUBLE,
    PRIMARY KEY (evaluated_through, model, ticker, horizon)
);
