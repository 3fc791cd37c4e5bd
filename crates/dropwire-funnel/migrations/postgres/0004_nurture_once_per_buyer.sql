-- A buyer's nurture schedule runs once per drop, however many of its claims they redeem.
CREATE UNIQUE INDEX timers_once_per_buyer ON timers (drop_id, viewer_id, step);
