// A claim storm: N viewers mint tokens, connect, wait for the reveal and claim the moment
// it reaches them. `claim_latency` runs from the reveal's arrival to the claim's answer.
// The director reads the drop back from the API afterwards: the viewers' `ok` claims must
// equal the stock the API reports (all of it, since there are more viewers than units),
// the API's granted claims must equal it too, and nothing may be oversold.
//
//   DW_URL, DW_ADMIN_TOKEN, DW_VIEWERS (default 50), DW_STOCK (10, at most DW_VIEWERS),
//   DW_P95_MS (claim p95, 250), DW_CONNECT_S (60)

import { WebSocket } from 'k6/experimental/websockets';
import { setTimeout, clearTimeout } from 'k6/timers';
import { check, fail, sleep } from 'k6';
import { Counter, Gauge, Trend } from 'k6/metrics';
import * as dw from './lib.js';

const VIEWERS = dw.envInt('DW_VIEWERS', 50);
const STOCK = dw.envInt('DW_STOCK', Math.min(10, VIEWERS));
const P95_MS = dw.envInt('DW_P95_MS', 250);
const CONNECT_S = dw.envInt('DW_CONNECT_S', 60);
const RUN_S = CONNECT_S + 60;
if (STOCK < 1 || STOCK > VIEWERS) {
  fail(`DW_STOCK=${STOCK}: needs 1..DW_VIEWERS (${VIEWERS}) so the storm sells out`);
}

const claimLatency = new Trend('claim_latency', true);
const claimsOk = new Counter('claims_ok');
const claimsSoldOut = new Counter('claims_sold_out');
const claimsOther = new Counter('claims_other');
const claimsUnanswered = new Counter('claims_unanswered');
const revealMissed = new Counter('reveal_missed');
const oversell = new Counter('oversell');
const apiStock = new Gauge('api_stock');
const apiGranted = new Gauge('api_claims_granted');
const apiLeft = new Gauge('api_stock_left');

export const options = {
  setupTimeout: '30s',
  teardownTimeout: '30s',
  scenarios: {
    viewers: { executor: 'per-vu-iterations', exec: 'viewer', vus: Math.max(1, VIEWERS), iterations: 1, maxDuration: `${RUN_S}s` },
    director: { executor: 'per-vu-iterations', exec: 'director', vus: 1, iterations: 1, maxDuration: `${RUN_S}s` },
  },
  thresholds: {
    claim_latency: [`p(95)<${P95_MS}`],
    // The viewers' ok claims, the stock the API reports, and the API's granted claims agree.
    claims_ok: [`count==${STOCK}`],
    api_stock: [`value==${STOCK}`],
    api_claims_granted: [`value==${STOCK}`],
    api_stock_left: ['value==0'],
    claims_sold_out: [`count==${VIEWERS - STOCK}`],
    claims_other: ['count==0'],
    claims_unanswered: ['count==0'],
    reveal_missed: ['count==0'],
    oversell: ['count==0'],
    checks: ['rate==1'],
  },
};

export function setup() {
  dw.requireAdmin();
  const id = dw.createDrop('k6-claims', STOCK);
  dw.startDrop(id);
  return { id };
}

export function viewer(data) {
  const token = dw.mintToken(`k6-claimer-${__VU}`);
  const ws = new WebSocket(dw.wsUrl(data.id));
  let revealAt = null;
  let answered = false;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    clearTimeout(giveUp);
    if (revealAt === null) revealMissed.add(1);
    else if (!answered) claimsUnanswered.add(1);
    // Zero samples keep every threshold's metric present even when nothing happened.
    claimsOk.add(0);
    claimsSoldOut.add(0);
    claimsOther.add(0);
  };
  const giveUp = setTimeout(() => ws.close(), RUN_S * 1000);
  ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', token }));
  ws.onmessage = (e) => {
    const now = Date.now();
    const msg = JSON.parse(e.data);
    if (msg.type === 'cue' && msg.cue && msg.cue.type === 'reveal' && revealAt === null) {
      revealAt = now;
      ws.send(JSON.stringify({ type: 'claim', sku: msg.cue.sku, rid: `r${__VU}` }));
    } else if (msg.type === 'claim_result' && !answered) {
      answered = true;
      claimLatency.add(now - revealAt);
      if (msg.ok) claimsOk.add(1);
      else if (msg.reason === 'sold_out') claimsSoldOut.add(1);
      else claimsOther.add(1, { reason: String(msg.reason) });
      ws.close();
    } else if (msg.type === 'state' && msg.state === 'closed') {
      ws.close();
    }
  };
  ws.onerror = () => {
    finish();
    ws.close();
  };
  ws.onclose = finish;
}

export function director(data) {
  const counted = dw.waitForViewers(data.id, VIEWERS, CONNECT_S);
  check(counted, { 'every viewer connected before the reveal': (n) => n >= VIEWERS });
  dw.fireCue(data.id, dw.REVEAL_CUE);
  // Wait for the stock to run out (or 15 s), then read the drop back.
  const end = Date.now() + 15000;
  let left = null;
  while (Date.now() < end) {
    const item = (dw.stats(data.id).stock || []).find((s) => s.sku === dw.SKU);
    left = item ? item.left : null;
    if (left === 0) break;
    sleep(0.1);
  }
  sleep(1);
  const s = dw.stats(data.id);
  const drop = dw.getDrop(data.id);
  const item = (drop.inventory || []).find((i) => i.sku === dw.SKU);
  const stock = item ? item.stock : -1;
  const granted = (s.claims.held || 0) + (s.claims.redeemed || 0);
  const leftNow = ((s.stock || []).find((x) => x.sku === dw.SKU) || { left: -1 }).left;
  apiStock.add(stock);
  apiGranted.add(granted);
  apiLeft.add(leftNow);
  oversell.add(Math.max(0, granted - stock));
  check(null, {
    'granted + left equals the stock (API)': () => granted + leftNow === stock,
  });
  dw.closeDrop(data.id);
}
