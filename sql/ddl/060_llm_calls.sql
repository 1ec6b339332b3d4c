-- Every call the LLM fallback made (model_code/signals/llm.py), one row per attempt: a model
-- that answered, failed over, or was not asked because the run's budget was spent. attempt
-- counts a ticker's attempts in one run from 1 in failover order. latency_ms is milliseconds
-- from request to last byte; tokens_per_s is the server's eval_count / eval_duration (NULL when
-- it sent none). error never holds a secret: configured tokens are masked as ***. action and
-- stated_confidence: the verdict of the attempt that answered (NULL on the others), the LLM
-- source's own calls that calibrate its confidence once their horizon closes. called_at is
-- time-zone aware (UTC).
CREATE TABLE IF NOT EXISTS signals.llm_calls (
    run_id         VARCHAR    NOT NULL,
    as_of          DATE       NOT NULL,
    ticker         VARCHAR    NOT NULL,
    attempt        INTEGER    NOT NULL,
    model          VARCHAR    NOT NULL,
    latency_ms     DOUBLE     NOT NULL,
    tokens_per_s   DOUBLE,
    prompt_sha256  VARCHAR    NOT NULL,
    outcome        VARCHAR    NOT NULL CHECK (outcome IN ('ok', 'timeout', 'unreachable', 'http_error',
                       'invalid_json', 'schema_violation', 'stream_error', 'too_slow', 'budget_exhausted')),
    error          VARCHAR,
    called_at      TIMESTAMPTZ NOT NULL,
    action         VARCHAR,
    stated_confidence DOUBLE,
    PRIMARY KEY (run_id, as_of, ticker, attempt)
);
