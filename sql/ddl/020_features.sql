-- Features layer. Features and targets live in separate tables so no query can pick up a
-- target as a feature by accident. Units are in model_code/features/daily.py and targets.py.

-- Point-in-time features: the row (ticker, date) uses only bars dated <= date.
CREATE TABLE IF NOT EXISTS features.daily (
    ticker                 VARCHAR   NOT NULL,
    date                   DATE      NOT NULL,
    mom_1_20               DOUBLE,
    mom_20_60              DOUBLE,
    adx_14                 DOUBLE,
    bb_pos_20              DOUBLE,
    rv_21                  DOUBLE,
    vol_ratio_10_63        DOUBLE,
    hurst_100              DOUBLE,
    vr_2_126               DOUBLE,
    vr_5_126               DOUBLE,
    vr_10_126              DOUBLE,
    volume_z_20            DOUBLE,
    day_of_week            TINYINT,
    month                  TINYINT,
    is_month_end           BOOLEAN,
    sessions_to_month_end  INTEGER,
    computed_at            TIMESTAMP NOT NULL,
    PRIMARY KEY (ticker, date)
);

-- Forward targets of the row (ticker, date). A horizon's columns stay NULL until its
-- target_date has closed; once known they are never overwritten with NULL.
CREATE TABLE IF NOT EXISTS features.targets (
    ticker           VARCHAR   NOT NULL,
    date             DATE      NOT NULL,
    trailing_vol_21  DOUBLE,
    target_date_1    DATE,
    fwd_ret_1        DOUBLE,
    fwd_ret_1_z      DOUBLE,
    sig_move_1       TINYINT,
    target_date_5    DATE,
    fwd_ret_5        DOUBLE,
    fwd_ret_5_z      DOUBLE,
    sig_move_5       TINYINT,
    target_date_21   DATE,
    fwd_ret_21       DOUBLE,
    fwd_ret_21_z     DOUBLE,
    sig_move_21      TINYINT,
    target_date_63   DATE,
    fwd_ret_63       DOUBLE,
    fwd_ret_63_z     DOUBLE,
    sig_move_63      TINYINT,
    computed_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (ticker, date)
);
