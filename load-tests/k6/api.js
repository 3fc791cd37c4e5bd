// HTTP API load: each iteration mints a viewer token, reads the drop and its stats, and
// lists the drops. Fails when any request fails or p95 is over DW_P95_MS.
//
//   DW_URL, DW_ADMIN_TOKEN, DW_VIEWERS (concurrent clients, default 20),
//   DW_DURATION (default 20s), DW_P95_MS (250)

import { check } from 'k6';
import * as dw from './lib.js';

const VUS = dw.envInt('DW_VIEWERS', 20);
const P95_MS = dw.envInt('DW_P95_MS', 250);

export const options = {
  setupTimeout: '30s',
  scenarios: {
    api: { executor: 'constant-vus', vus: Math.max(1, VUS), duration: __ENV.DW_DURATION || '20s' },
  },
  thresholds: {
    http_req_failed: ['rate==0'],
    'http_req_duration{name:mint token}': [`p(95)<${P95_MS}`],
    'http_req_duration{name:get drop}': [`p(95)<${P95_MS}`],
    'http_req_duration{name:stats}': [`p(95)<${P95_MS}`],
    'http_req_duration{name:list drops}': [`p(95)<${P95_MS}`],
    iterations: ['count>0'],
    checks: ['rate==1'],
  },
};

export function setup() {
  dw.requireAdmin();
  const id = dw.createDrop('k6-api', 100);
  dw.startDrop(id);
  return { id };
}

export default function (data) {
  const token = dw.mintToken(`k6-api-${__VU}-${__ITER}`);
  check(token, { 'a token is minted': (t) => typeof t === 'string' && t.length > 10 });
  const drop = dw.getDrop(data.id);
  check(drop, { 'the drop is live': (d) => d.id === data.id && d.state === 'live' });
  const s = dw.stats(data.id);
  check(s, { 'stats carry the stock': (x) => Array.isArray(x.stock) && x.stock.some((i) => i.sku === dw.SKU) });
  const list = dw.api('GET', '/api/v1/drops', undefined, 'list drops');
  check(list, { 'the list holds the drop': (l) => l.drops.some((d) => d.id === data.id) });
}

export function teardown(data) {
  dw.closeDrop(data.id);
}
