-- Recipes: reusable drop templates, one row per recipe of a maker, holding its latest
-- version; `body` is the recipe as JSON (name, description, params, drop) (SQLite).
CREATE TABLE recipes (
    maker      TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    body       TEXT   NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (maker, id)
);
