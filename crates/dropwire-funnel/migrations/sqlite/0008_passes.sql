-- Collectible passes: a maker's pass rules (what earns a pass, what it grants), the passes
-- viewers earned (once per rule and viewer; revoked by the maker), and the key that signs
-- their portable tokens (one per ledger, so every node sharing it signs alike) (SQLite).
CREATE TABLE pass_rules (
    maker      TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    earned_by  TEXT   NOT NULL,
    grants     TEXT   NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (maker, id)
);

CREATE TABLE passes (
    id         TEXT   NOT NULL PRIMARY KEY,
    maker      TEXT   NOT NULL,
    rule       TEXT   NOT NULL,
    viewer_id  TEXT   NOT NULL,
    earned_ms  BIGINT NOT NULL,
    revoked_ms BIGINT,
    UNIQUE (maker, rule, viewer_id)
);

CREATE INDEX passes_by_viewer ON passes (viewer_id);

CREATE TABLE signing_keys (
    purpose    TEXT   NOT NULL PRIMARY KEY,
    kid        TEXT   NOT NULL,
    secret     TEXT   NOT NULL,
    created_ms BIGINT NOT NULL
);
