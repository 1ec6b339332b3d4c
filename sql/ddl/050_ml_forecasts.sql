-- ML forecasts: the champion model of each family and horizon scored at each as_of close, in
-- exactly the layout of forecasts.predictions so the ensemble and the signal router can treat
-- both alike. yhat is the calibrated cumulative log return from the as_of close to the close of
-- target_date; the intervals are split-conformal on the model's validation residuals;
-- fit_seconds is NULL (the model is trained once, by the ml/model asset, not per ticker).
CREATE TABLE IF NOT EXISTS forecasts.ml_predictions (
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
