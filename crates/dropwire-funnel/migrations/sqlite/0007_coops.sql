-- Co-ops: makers grouped to share one launch calendar (overlap warnings, co-op KPIs).
-- A co-op, and one row per member maker; a co-op's members go with it (SQLite).
CREATE TABLE coops (
    id         TEXT   NOT NULL PRIMARY KEY,
    name       TEXT   NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE coop_makers (
    coop_id  TEXT   NOT NULL REFERENCES coops (id) ON DELETE CASCADE,
    maker    TEXT   NOT NULL,
    added_ms BIGINT NOT NULL,
    PRIMARY KEY (coop_id, maker)
);

CREATE INDEX coop_makers_by_maker ON coop_makers (maker);
