// A small, known funnel history for the analytics tests, as NDJSON facts for
// `POST /api/v1/ledger/import`: three drops of three kinds, with their viewers, waitlists,
// claims, redemptions and a follow-up coupon order at fixed times (the last one five days
// before `now`, so its 90-day repeat window is still open).
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** 2025-03-01 18:00 UTC. */
export const T0 = Date.UTC(2025, 2, 1, 18);

export const DROPS = {
  mugs: { id: 'an-spring-mugs', title: 'Speckled mugs, spring batch', kind: 'drop', currency: 'EUR' },
  workshop: { id: 'an-glaze-workshop', title: 'Glazing workshop', kind: 'workshop' }, // no currency: EUR
  demo: { id: 'an-wheel-demo', title: 'Wheel demo', kind: 'demo', currency: 'USD' },
};

/**
 * The facts, and what the figures must be:
 * - mugs (live T0): viewers v1–v10, waitlist v1–v4, claims v1 v2 v3 v5; v1 and v2 redeem within
 *   48 h, v3 after three days (34 € each); v1 orders with the follow-up coupon on day 10 (20 €).
 *   Funnel 10 → 4 → 4 → 3; intent 3/4; claim rate 4/10; conversion 2/4; revenue 102 €;
 *   buyers 3, repeat 2/3 (v1's coupon, v2's workshop seat on day 30).
 * - workshop (live T0 + 30 d): viewers v1 v2 v11–v16, waitlist v11 v12, claims v2 v11, both
 *   redeemed at once (50 € each). Funnel 8 → 2 → 2 → 2; re-engagement 2/8 (v1, v2).
 * - demo (live now − 5 d, USD): viewers v3 v20–v23, no waitlist, claim v20 redeemed ($25).
 *   Funnel 5 → 0 → 1 → 1; intent none; repeat window still open.
 */
export function history(now) {
  const facts = [];
  let n = 0;
  const add = (kind, drop, viewer, at, detail = {}) => {
    n += 1;
    facts.push({ id: `an-${String(n).padStart(3, '0')}-${kind}`, kind, drop_id: drop, viewer_id: viewer, at_ms: at, detail });
  };
  const drop = (d, live, viewers, waitlist, claims, coupons = []) => {
    add('drop.scheduled', d.id, null, live - 7 * DAY, { kind: d.kind, title: d.title, ...(d.currency ? { currency: d.currency } : {}) });
    for (const [i, v] of waitlist.entries()) add('waitlist.joined', d.id, v, live - 2 * DAY + i * HOUR);
    add('drop.live', d.id, null, live);
    for (const [i, v] of viewers.entries()) add('viewer.attended', d.id, v, live + i * 60_000);
    for (const c of claims) {
      add('claim.granted', d.id, c.viewer, live + 20 * 60_000, { code: c.code });
      if (c.redeemAfter !== undefined) add('claim.redeemed', d.id, c.viewer, live + 20 * 60_000 + c.redeemAfter, { code: c.code, amount_cents: c.cents });
    }
    for (const c of coupons) add('coupon.redeemed', d.id, c.viewer, live + c.after, { code: c.code, amount_cents: c.cents });
  };
  const v = (...ids) => ids.map((i) => `an-v${i}`);
  drop(DROPS.mugs, T0, v(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), v(1, 2, 3, 4), [
    { viewer: 'an-v1', code: 'MUG-A1', redeemAfter: HOUR, cents: 3400 },
    { viewer: 'an-v2', code: 'MUG-A2', redeemAfter: DAY, cents: 3400 },
    { viewer: 'an-v3', code: 'MUG-A3', redeemAfter: 3 * DAY, cents: 3400 },
    { viewer: 'an-v5', code: 'MUG-A4' },
  ], [{ viewer: 'an-v1', code: 'THANKS-V1', after: 10 * DAY, cents: 2000 }]);
  drop(DROPS.workshop, T0 + 30 * DAY, v(1, 2, 11, 12, 13, 14, 15, 16), v(11, 12), [
    { viewer: 'an-v2', code: 'WS-B1', redeemAfter: HOUR, cents: 5000 },
    { viewer: 'an-v11', code: 'WS-B2', redeemAfter: HOUR, cents: 5000 },
  ]);
  drop(DROPS.demo, now - 5 * DAY, v(3, 20, 21, 22, 23), [], [
    { viewer: 'an-v20', code: 'DEMO-C1', redeemAfter: HOUR, cents: 2500 },
  ]);
  return facts;
}

export const ndjson = (facts) => `${facts.map((f) => JSON.stringify(f)).join('\n')}\n`;
