-- Webhook endpoints and their transactional outbox; follow-up coupons; nurture timers;
-- per-maker settings (SQLite).
CREATE TABLE endpoints (
    id                  TEXT   PRIMARY KEY,
    maker               TEXT   NOT NULL,
    url                 TEXT   NOT NULL,
    events              TEXT   NOT NULL,
    description         TEXT   NOT NULL,
    secret              TEXT   NOT NULL,
    old_secret          TEXT,
    old_secret_until_ms BIGINT,
    disabled_ms         BIGINT,
    disabled_reason     TEXT,
    failing_since_ms    BIGINT,
    created_ms          BIGINT NOT NULL
);
CREATE INDEX endpoints_maker ON endpoints (maker);

-- One row per message and endpoint, written in the transaction of the fact it announces.
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id          TEXT    NOT NULL,
    endpoint_id     TEXT    NOT NULL,
    fact_seq        BIGINT  NOT NULL,
    event           TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL,
    next_ms         BIGINT  NOT NULL,
    lease_until_ms  BIGINT  NOT NULL,
    last_status     BIGINT,
    last_error      TEXT,
    created_ms      BIGINT  NOT NULL,
    done_ms         BIGINT,
    UNIQUE (msg_id, endpoint_id)
);
CREATE INDEX outbox_due ON outbox (state, endpoint_id, next_ms);
CREATE INDEX outbox_endpoint ON outbox (endpoint_id, seq);

CREATE TABLE attempts (
    outbox_seq  BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    status      BIGINT,
    error       TEXT,
    latency_ms  BIGINT NOT NULL
);
CREATE INDEX attempts_outbox ON attempts (outbox_seq);

CREATE TABLE coupons (
    code         TEXT   PRIMARY KEY,
    claim_code   TEXT   NOT NULL UNIQUE,
    maker        TEXT   NOT NULL,
    drop_id      TEXT   NOT NULL,
    viewer_id    TEXT   NOT NULL,
    percent_off  BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL,
    redeemed_ms  BIGINT,
    amount_cents BIGINT,
    currency     TEXT   NOT NULL
);
CREATE INDEX coupons_viewer ON coupons (viewer_id);

CREATE TABLE timers (
    id              TEXT   PRIMARY KEY,
    maker           TEXT   NOT NULL,
    drop_id         TEXT   NOT NULL,
    viewer_id       TEXT   NOT NULL,
    step            TEXT   NOT NULL,
    due_ms          BIGINT NOT NULL,
    state           TEXT   NOT NULL,
    lease_until_ms  BIGINT NOT NULL
);
CREATE INDEX timers_due ON timers (state, due_ms);
CREATE INDEX timers_viewer ON timers (viewer_id);

CREATE TABLE settings (
    maker TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (maker, key)
);
