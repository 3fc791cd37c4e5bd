-- Makers (tenants) and their admin tokens (postgres). The maker `default` is implicit (it owns
-- everything made before makers were tenants) and has no row. A token is kept only as the
-- SHA-256 of its text (hex); a revoked one keeps its row, with `revoked_ms`.
CREATE TABLE makers (
    id         TEXT   NOT NULL PRIMARY KEY,
    name       TEXT   NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE maker_tokens (
    id         TEXT   NOT NULL PRIMARY KEY,
    maker      TEXT   NOT NULL REFERENCES makers (id),
    label      TEXT   NOT NULL,
    hash       TEXT   NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);

CREATE INDEX maker_tokens_by_maker ON maker_tokens (maker, created_ms);
