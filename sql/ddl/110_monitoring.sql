-- Monitoring layer: how each forecaster is doing as its targets close, how fresh the bars are,
-- and how old each fit and model is, per as_of session (model_code/monitoring/).

-- Rolling accuracy over the forecasts whose target closed in the window_start..as_of sessions
-- (63 by default, config/monitoring.yaml). ticker = '*' rows pool the universe. n counts the
-- realized forecasts behind rmse/rmse_rw/rmse_ratio (the realized-loss rule of the ensemble
-- weights); hit_n those behind hit_rate; up_rate is the always-up forecaster's hit rate on the
-- same keys. judged: enough forecasts for a rule; decayed: hit_rate < min_hit_rate or
-- rmse_ratio > max_rmse_ratio; crossed: decayed now and not at the previous evaluation.
CREATE TABLE IF NOT EXISTS monitoring.model_health (
    as_of         DATE     NOT NULL,
    model         VARCHAR  NOT NULL,
    ticker        VARCHAR  NOT NULL,
    horizon       INTEGER  NOT NULL,
    family        VARCHAR  NOT NULL CHECK (family IN ('statistical', 'ml')),
    window_start  DATE     NOT NULL,
    n             BIGINT,
    hit_n         BIGINT,
    hit_rate      DOUBLE,
    up_rate       DOUBLE,
    rmse          DOUBLE,
    rmse_rw       DOUBLE,
    rmse_ratio    DOUBLE,
    coverage_80   DOUBLE,
    coverage_95   DOUBLE,
    judged        BOOLEAN  NOT NULL,
    decayed       BOOLEAN  NOT NULL,
    crossed       BOOLEAN  NOT NULL,
    reason        VARCHAR,
    PRIMARY KEY (as_of, model, ticker, horizon)
);

-- Each active ticker's last stored bar up to as_of; sessions_behind is NULL with no bar at all.
CREATE TABLE IF NOT EXISTS monitoring.freshness (
    as_of            DATE     NOT NULL,
    ticker           VARCHAR  NOT NULL,
    last_bar         DATE,
    sessions_behind  INTEGER,
    stale            BOOLEAN  NOT NULL,
    PRIMARY KEY (as_of, ticker)
);

-- Age of the fit or model behind each forecaster at as_of. Statistical rows: one per (ticker,
-- model), horizon 0 (a fit serves every horizon), source 'models.fits' (the latest stored fit
-- whose window ends by as_of), 'no_stored_fit' or 'nightly_refit' (no models.fits table: refitted
-- on the bars up to as_of, age 0). ML rows: one per champion, ticker '*', source 'models.registry',
-- window_end = train_end. age_sessions: sessions after window_end up to as_of; age_days: days
-- from fitted_at to the end of as_of.
CREATE TABLE IF NOT EXISTS monitoring.model_age (
    as_of         DATE       NOT NULL,
    model         VARCHAR    NOT NULL,
    ticker        VARCHAR    NOT NULL,
    horizon       INTEGER    NOT NULL,
    family        VARCHAR    NOT NULL CHECK (family IN ('statistical', 'ml')),
    source        VARCHAR    NOT NULL,
    model_id      VARCHAR,
    fitted_at     TIMESTAMP,
    window_end    DATE,
    age_sessions  INTEGER,
    age_days      DOUBLE,
    PRIMARY KEY (as_of, model, ticker, horizon)
);
