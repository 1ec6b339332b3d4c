-- Models layer: the registry of trained models and their feature importances.

-- One row per trained model artifact. params, cv_metrics and feature_list are JSON text;
-- feature_list_hash is sha256 of the ordered feature list (a model only scores frames with the
-- same columns in the same order). artifact_path is the artifact folder under $PM_HOME/models.
-- At most one 'champion' per (family, horizon), enforced by ModelRegistry.promote; a model past
-- expires_at (NULL = never) is refused at load time and must be retrained.
CREATE TABLE IF NOT EXISTS models.registry (
    model_id           VARCHAR   PRIMARY KEY,
    family             VARCHAR   NOT NULL,
    horizon            INTEGER   NOT NULL,
    trained_at         TIMESTAMP NOT NULL,
    train_start        DATE      NOT NULL,
    train_end          DATE      NOT NULL,
    params             VARCHAR   NOT NULL,
    cv_metrics         VARCHAR,
    feature_list_hash  VARCHAR   NOT NULL,
    feature_list       VARCHAR   NOT NULL,
    artifact_path      VARCHAR   NOT NULL,
    status             VARCHAR   NOT NULL CHECK (status IN ('champion', 'challenger', 'retired')),
    expires_at         TIMESTAMP
);

-- Per-model feature importance: gain = share of total LightGBM split gain (sums to 1; NULL for
-- models without trees), permutation = mean drop in the validation score when the feature is
-- shuffled (rank IC, or increase in MSE), permutation_std = its std over repeats.
CREATE TABLE IF NOT EXISTS models.feature_importance (
    model_id         VARCHAR NOT NULL,
    feature          VARCHAR NOT NULL,
    gain             DOUBLE,
    permutation      DOUBLE,
    permutation_std  DOUBLE,
    PRIMARY KEY (model_id, feature)
);

-- Every governance decision with its evidence (model_code/governance.py, written by
-- model_code/governance_store.py). family: a models.registry family, or 'router' for the
-- router's primary (subject/rival then 'ml' / 'ts'). action: promote (subject becomes champion
-- over rival), refuse (subject did not clear the gate against rival), revert (subject, the
-- previous champion, replaces rival), keep (subject stays champion), abstain (no candidate
-- cleared the gate against the baseline named by rival: the family has no champion).
-- evidence is JSON (DM statistic and one-sided p, DSR, profit factor uplift, drawdown growth,
-- origins compared ...); data_end: the last session whose realized targets the evidence used.
-- Natural key (decided_at, family, horizon, subject, rival): a rerun of the same decision
-- overwrites its row.
CREATE TABLE IF NOT EXISTS models.decisions (
    decided_at  TIMESTAMP NOT NULL,
    family      VARCHAR   NOT NULL,
    horizon     INTEGER   NOT NULL,
    subject     VARCHAR   NOT NULL,
    rival       VARCHAR   NOT NULL,
    action      VARCHAR   NOT NULL CHECK (action IN ('promote', 'refuse', 'revert', 'keep', 'abstain')),
    reason      VARCHAR   NOT NULL,
    evidence    VARCHAR   NOT NULL,
    data_end    DATE,
    PRIMARY KEY (decided_at, family, horizon, subject, rival)
);
