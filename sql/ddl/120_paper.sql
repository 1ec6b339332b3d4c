-- The paper-trading ledger (model_code/paper/): one set of rows per account and session.
-- orders: target weights turned into signed share quantities at a close (kind 'rebalance'), or a
-- delisted position's close (kind 'delisting', dated the day it is closed); order_id is
-- (as_of, account, ticker, side), so a re-run finds the same order. fills: one per order, on the
-- bar it filled at (insert-if-absent: never twice); ordered is the order in that day's shares
-- (quantity x split_ratio), price 0 where there was no bar. positions: holdings after each close
-- (cost_basis in currency, costs included; close is the mark). cash and equity: the account per
-- close. trades: the journal of every change to a position or to cash.
CREATE TABLE IF NOT EXISTS paper.orders (
    order_id         VARCHAR      NOT NULL PRIMARY KEY,
    account          VARCHAR      NOT NULL,
    as_of            DATE         NOT NULL,
    ticker           VARCHAR      NOT NULL,
    side             VARCHAR      NOT NULL,
    quantity         DOUBLE       NOT NULL,
    kind             VARCHAR      NOT NULL,
    target_weight    DOUBLE,
    decision_close   DOUBLE,
    decision_equity  DOUBLE,
    liquidity        DOUBLE,
    sigma            DOUBLE,
    created_at       TIMESTAMPTZ  NOT NULL
);

CREATE TABLE IF NOT EXISTS paper.fills (
    order_id     VARCHAR      NOT NULL PRIMARY KEY,
    account      VARCHAR      NOT NULL,
    date         DATE         NOT NULL,
    ticker       VARCHAR      NOT NULL,
    kind         VARCHAR      NOT NULL,
    ordered      DOUBLE       NOT NULL,
    split_ratio  DOUBLE       NOT NULL,
    quantity     DOUBLE       NOT NULL,
    price        DOUBLE       NOT NULL,
    value        DOUBLE       NOT NULL,
    commission   DOUBLE       NOT NULL,
    slippage     DOUBLE       NOT NULL,
    impact       DOUBLE       NOT NULL,
    created_at   TIMESTAMPTZ  NOT NULL
);

CREATE TABLE IF NOT EXISTS paper.positions (
    account       VARCHAR  NOT NULL,
    date          DATE     NOT NULL,
    ticker        VARCHAR  NOT NULL,
    quantity      DOUBLE   NOT NULL,
    cost_basis    DOUBLE   NOT NULL,
    close         DOUBLE   NOT NULL,
    market_value  DOUBLE   NOT NULL,
    PRIMARY KEY (account, date, ticker)
);

CREATE TABLE IF NOT EXISTS paper.cash (
    account    VARCHAR  NOT NULL,
    date       DATE     NOT NULL,
    opening    DOUBLE   NOT NULL,
    traded     DOUBLE   NOT NULL,
    costs      DOUBLE   NOT NULL,
    dividends  DOUBLE   NOT NULL,
    cash       DOUBLE   NOT NULL,
    PRIMARY KEY (account, date)
);

CREATE TABLE IF NOT EXISTS paper.equity (
    account          VARCHAR      NOT NULL,
    date             DATE         NOT NULL,
    equity           DOUBLE       NOT NULL,
    cash             DOUBLE       NOT NULL,
    market_value     DOUBLE       NOT NULL,
    gross_exposure   DOUBLE       NOT NULL,
    peak             DOUBLE       NOT NULL,
    drawdown         DOUBLE       NOT NULL,
    hit_rate         DOUBLE,
    halted           VARCHAR,
    halt_note        VARCHAR,
    n_orders         BIGINT       NOT NULL,
    n_fills          BIGINT       NOT NULL,
    backtest_equity  DOUBLE,
    drift            DOUBLE,
    computed_at      TIMESTAMPTZ  NOT NULL,
    PRIMARY KEY (account, date)
);

CREATE TABLE IF NOT EXISTS paper.trades (
    account          VARCHAR  NOT NULL,
    date             DATE     NOT NULL,
    ticker           VARCHAR  NOT NULL,
    kind             VARCHAR  NOT NULL,
    quantity         DOUBLE   NOT NULL,
    price            DOUBLE,
    amount           DOUBLE   NOT NULL,
    ratio            DOUBLE,
    quantity_before  DOUBLE   NOT NULL,
    quantity_after   DOUBLE   NOT NULL,
    realized_pnl     DOUBLE,
    order_id         VARCHAR,
    PRIMARY KEY (account, date, ticker, kind)
);
