-- The funnel ledger (PostgreSQL). Facts are append-only: rows change only when a viewer is erased.
CREATE TABLE facts (
    seq       BIGSERIAL PRIMARY KEY,
    id        TEXT    NOT NULL UNIQUE,
    kind      TEXT    NOT NULL,
    maker     TEXT    NOT NULL,
    drop_id   TEXT,
    viewer_id TEXT,
    at_ms     BIGINT  NOT NULL,
    detail    TEXT    NOT NULL
);
CREATE INDEX facts_drop_kind ON facts (drop_id, kind);
CREATE INDEX facts_viewer ON facts (viewer_id);
CREATE INDEX facts_kind_at ON facts (kind, at_ms);

CREATE TABLE waitlist (
    seq        BIGSERIAL PRIMARY KEY,
    drop_id    TEXT    NOT NULL,
    viewer_id  TEXT    NOT NULL,
    handle     TEXT    NOT NULL,
    size       TEXT,
    items      TEXT    NOT NULL,
    note       TEXT,
    marketing  BIGINT  NOT NULL,
    contact    TEXT,
    joined_ms  BIGINT  NOT NULL,
    updated_ms BIGINT  NOT NULL,
    revision   BIGINT  NOT NULL,
    UNIQUE (drop_id, viewer_id)
);
CREATE INDEX waitlist_viewer ON waitlist (viewer_id);

CREATE TABLE reconciled (
    drop_id TEXT   PRIMARY KEY,
    at_ms   BIGINT NOT NULL
);
