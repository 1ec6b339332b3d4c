-- Stored statistical fits (model_code/forecasting/stored.py): one row per fit of one model on
-- one ticker's daily log returns over window_start..window_end (dates of its first and last
-- return). params is the fit's state as JSON (coefficients, state-space form, variances ...);
-- diagnostics the fit's FitDiagnostics as JSON; artifact_path, relative to $PM_HOME, the folder
-- (meta.json + arrays.npz) holding arrays too large for JSON (an SSA basis), NULL when none.
-- forecasts/predictions applies the latest fit whose window_end <= as_of without re-estimating;
-- forecasts/fits refits. Natural key (ticker, model, window_end): a refit on the same data
-- overwrites its row (and its artifact folder).
CREATE TABLE IF NOT EXISTS models.fits (
    ticker         VARCHAR   NOT NULL,
    model          VARCHAR   NOT NULL,
    fitted_at      TIMESTAMP NOT NULL,
    window_start   DATE      NOT NULL,
    window_end     DATE      NOT NULL,
    n_obs          BIGINT    NOT NULL,
    params         VARCHAR   NOT NULL,
    diagnostics    VARCHAR,
    artifact_path  VARCHAR,
    PRIMARY KEY (ticker, model, window_end)
);
