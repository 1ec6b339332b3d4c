-- Backtests of the stored allocations and their baselines (model_code/backtest/runs.py).
-- runs: one row per run, with what it ran on; equity: daily per strategy (equity in currency,
-- drawdown a positive fraction, exposure and turnover fractions of equity, costs in currency);
-- trials: every configuration ever run, once (N and the dispersion of the deflated Sharpe);
-- metrics: per run and strategy, model_code.backtest.metrics.METRIC_COLUMNS.
-- regimes: per run, strategy, regime kind and regime (model_code.backtest.runs.regime_frame):
-- Sharpe per period +- its standard error, and the kind's worst regime, share positive and
-- Cochran's Q test repeated on each of its rows. capacity: per run, strategy and impact
-- coefficient k (model_code.backtest.runs.capacity_frame): dollar AUM levels (inf: never binds;
-- NULL: none of the strategy's trades has an ADV to price it).
CREATE TABLE IF NOT EXISTS backtest.runs (
    run_id        VARCHAR      NOT NULL PRIMARY KEY,
    created_at    TIMESTAMPTZ  NOT NULL,
    config_hash   VARCHAR      NOT NULL,
    config        VARCHAR      NOT NULL,
    data_start    DATE         NOT NULL,
    data_end      DATE         NOT NULL,
    git_sha       VARCHAR      NOT NULL,
    tickers       INTEGER      NOT NULL
);

CREATE TABLE IF NOT EXISTS backtest.equity (
    run_id          VARCHAR  NOT NULL,
    strategy        VARCHAR  NOT NULL,
    date            DATE     NOT NULL,
    equity          DOUBLE   NOT NULL,
    drawdown        DOUBLE   NOT NULL,
    gross_exposure  DOUBLE   NOT NULL,
    turnover        DOUBLE   NOT NULL,
    costs           DOUBLE   NOT NULL,
    PRIMARY KEY (run_id, strategy, date)
);

CREATE TABLE IF NOT EXISTS backtest.trials (
    config_hash        VARCHAR      NOT NULL PRIMARY KEY,
    config             VARCHAR      NOT NULL,
    first_run_id       VARCHAR      NOT NULL,
    sharpe_per_period  DOUBLE,
    n_periods          BIGINT       NOT NULL,
    created_at         TIMESTAMPTZ  NOT NULL
);

CREATE TABLE IF NOT EXISTS backtest.metrics (
    run_id                   VARCHAR  NOT NULL,
    strategy                 VARCHAR  NOT NULL,
    n_periods                BIGINT,
    total_return             DOUBLE,
    cagr                     DOUBLE,
    volatility               DOUBLE,
    sharpe                   DOUBLE,
    sharpe_per_period        DOUBLE,
    sortino                  DOUBLE,
    max_drawdown             DOUBLE,
    calmar                   DOUBLE,
    profit_factor            DOUBLE,
    hit_rate                 DOUBLE,
    information_ratio        DOUBLE,
    mean_turnover            DOUBLE,
    skewness                 DOUBLE,
    kurtosis                 DOUBLE,
    psr                      DOUBLE,
    expected_max_sharpe      DOUBLE,
    dsr                      DOUBLE,
    min_track_record_length  DOUBLE,
    n_trials                 BIGINT,
    PRIMARY KEY (run_id, strategy)
);

CREATE TABLE IF NOT EXISTS backtest.regimes (
    run_id             VARCHAR  NOT NULL,
    strategy           VARCHAR  NOT NULL,
    regime_kind        VARCHAR  NOT NULL,
    regime             VARCHAR  NOT NULL,
    n                  BIGINT   NOT NULL,
    sharpe             DOUBLE   NOT NULL,
    sharpe_se          DOUBLE   NOT NULL,
    sharpe_annualized  DOUBLE   NOT NULL,
    is_worst           BOOLEAN  NOT NULL,
    regimes_in_kind    BIGINT   NOT NULL,
    share_positive     DOUBLE,
    cochran_q          DOUBLE,
    heterogeneity_p    DOUBLE,
    PRIMARY KEY (run_id, strategy, regime_kind, regime)
);

CREATE TABLE IF NOT EXISTS backtest.capacity (
    run_id                   VARCHAR  NOT NULL,
    strategy                 VARCHAR  NOT NULL,
    k                        DOUBLE   NOT NULL,
    half_spread              DOUBLE   NOT NULL,
    aum_edge_vanishes        DOUBLE,
    aum_sharpe_halves        DOUBLE,
    aum_participation_binds  DOUBLE,
    capacity                 DOUBLE,
    gross_mean               DOUBLE   NOT NULL,
    fixed_cost               DOUBLE   NOT NULL,
    impact_coefficient       DOUBLE   NOT NULL,
    trades                   BIGINT   NOT NULL,
    unpriced_trades          BIGINT   NOT NULL,
    PRIMARY KEY (run_id, strategy, k)
);
