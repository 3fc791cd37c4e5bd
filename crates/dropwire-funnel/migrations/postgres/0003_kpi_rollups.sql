-- Rollups the KPIs read (docs/metrics.md), kept in the transaction of each new fact and
-- built here from the facts already recorded (PostgreSQL).
CREATE TABLE kpi_drops (
    drop_id      TEXT   PRIMARY KEY,
    maker        TEXT   NOT NULL,
    kind         TEXT   NOT NULL DEFAULT 'drop',
    recipe       TEXT,
    title        TEXT,
    scheduled_ms BIGINT,
    live_ms      BIGINT,
    closed_ms    BIGINT,
    peak_viewers BIGINT
);
CREATE INDEX kpi_drops_maker ON kpi_drops (maker);

CREATE TABLE kpi_viewers (
    drop_id       TEXT   NOT NULL,
    viewer_id     TEXT   NOT NULL,
    maker         TEXT   NOT NULL,
    attended_ms   BIGINT,
    waitlisted_ms BIGINT,
    claimed_ms    BIGINT,
    bought_ms     BIGINT,
    -- 1 when the viewer attended this drop and an earlier drop of the maker (re-engagement).
    came_back     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (drop_id, viewer_id)
);
CREATE INDEX kpi_viewers_viewer ON kpi_viewers (viewer_id);
-- Covers the per-drop KPI queries: an index scan in drop order, no table reads.
CREATE INDEX kpi_viewers_steps ON kpi_viewers
    (maker, drop_id, attended_ms, waitlisted_ms, claimed_ms, came_back, bought_ms, viewer_id);

CREATE TABLE kpi_claims (
    code         TEXT   PRIMARY KEY,
    drop_id      TEXT   NOT NULL,
    viewer_id    TEXT   NOT NULL,
    granted_ms   BIGINT,
    redeemed_ms  BIGINT,
    amount_cents BIGINT
);
CREATE INDEX kpi_claims_drop ON kpi_claims (drop_id);

CREATE TABLE kpi_purchases (
    id           TEXT   PRIMARY KEY,
    maker        TEXT   NOT NULL,
    viewer_id    TEXT   NOT NULL,
    drop_id      TEXT,
    source       TEXT   NOT NULL,
    at_ms        BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL
);
CREATE INDEX kpi_purchases_viewer ON kpi_purchases (viewer_id, at_ms);
CREATE INDEX kpi_purchases_drop ON kpi_purchases (drop_id, source);

INSERT INTO kpi_drops (drop_id, maker, kind, recipe, title, scheduled_ms)
    SELECT drop_id, maker, COALESCE((detail::jsonb ->> 'kind'), 'drop'), (detail::jsonb ->> 'recipe'),
           (detail::jsonb ->> 'title'), at_ms
    FROM facts WHERE kind = 'drop.scheduled' AND drop_id IS NOT NULL;
INSERT INTO kpi_drops (drop_id, maker, live_ms)
    SELECT drop_id, maker, at_ms FROM facts WHERE kind = 'drop.live' AND drop_id IS NOT NULL
    ON CONFLICT (drop_id) DO UPDATE SET live_ms = excluded.live_ms;
INSERT INTO kpi_drops (drop_id, maker, closed_ms, peak_viewers)
    SELECT drop_id, maker, at_ms, CAST(detail::jsonb ->> 'peak_viewers' AS BIGINT) FROM facts WHERE kind = 'drop.closed' AND drop_id IS NOT NULL
    ON CONFLICT (drop_id) DO UPDATE SET closed_ms = excluded.closed_ms, peak_viewers = excluded.peak_viewers;

INSERT INTO kpi_viewers (drop_id, viewer_id, maker, attended_ms, waitlisted_ms, claimed_ms, bought_ms)
    SELECT drop_id, viewer_id, MIN(maker),
           MIN(CASE WHEN kind = 'viewer.attended' THEN at_ms END),
           MIN(CASE WHEN kind = 'waitlist.joined' THEN at_ms END),
           MIN(CASE WHEN kind = 'claim.granted' THEN at_ms END),
           MIN(CASE WHEN kind = 'claim.redeemed' THEN at_ms END)
    FROM facts
    WHERE kind IN ('viewer.attended', 'waitlist.joined', 'claim.granted', 'claim.redeemed')
      AND drop_id IS NOT NULL AND viewer_id IS NOT NULL
    GROUP BY drop_id, viewer_id;

INSERT INTO kpi_claims (code, drop_id, viewer_id, granted_ms, redeemed_ms, amount_cents)
    SELECT (detail::jsonb ->> 'code'), MIN(drop_id), MIN(viewer_id),
           MIN(CASE WHEN kind = 'claim.granted' THEN at_ms END),
           MIN(CASE WHEN kind = 'claim.redeemed' THEN at_ms END),
           MAX(CASE WHEN kind = 'claim.redeemed' THEN CAST(detail::jsonb ->> 'amount_cents' AS BIGINT) END)
    FROM facts
    WHERE kind IN ('claim.granted', 'claim.redeemed') AND (detail::jsonb ->> 'code') IS NOT NULL
      AND drop_id IS NOT NULL AND viewer_id IS NOT NULL
    GROUP BY (detail::jsonb ->> 'code');

INSERT INTO kpi_purchases (id, maker, viewer_id, drop_id, source, at_ms, amount_cents)
    SELECT id, maker, viewer_id, drop_id, CASE WHEN kind = 'claim.redeemed' THEN 'claim' ELSE 'coupon' END,
           at_ms, COALESCE(CAST(detail::jsonb ->> 'amount_cents' AS BIGINT), 0)
    FROM facts WHERE kind IN ('claim.redeemed', 'coupon.redeemed') AND viewer_id IS NOT NULL;

UPDATE kpi_viewers SET came_back = CASE WHEN kpi_viewers.attended_ms IS NOT NULL AND f.first_ms < s.start_ms THEN 1 ELSE 0 END
FROM (SELECT o.viewer_id, MIN(COALESCE(d.live_ms, d.scheduled_ms, 0)) AS first_ms
      FROM kpi_viewers o JOIN kpi_drops d ON d.drop_id = o.drop_id
      WHERE o.attended_ms IS NOT NULL GROUP BY o.viewer_id) AS f,
     (SELECT drop_id, COALESCE(live_ms, scheduled_ms, 0) AS start_ms FROM kpi_drops) AS s
WHERE kpi_viewers.viewer_id = f.viewer_id AND s.drop_id = kpi_viewers.drop_id;
