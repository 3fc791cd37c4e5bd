// N viewers join one drop; a director fires DW_BROADCASTS ad-hoc cues one after another.
// Every viewer times each cue from its `ts` (the Trend `cue_latency`), counts gaps and
// order errors in `seq`, and counts the cues it never got. Fails (non-zero exit) when
// p95 latency is over DW_P95_MS, on any gap, any missed cue or any failed connection.
//
//   DW_URL, DW_ADMIN_TOKEN, DW_VIEWERS (default 50), DW_BROADCASTS (10),
//   DW_GAP_MS (between cues, 300), DW_P95_MS (250), DW_CONNECT_S (time to connect, 60)

import { WebSocket } from 'k6/experimental/websockets';
import { setTimeout, clearTimeout } from 'k6/timers';
import { check, sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import * as dw from './lib.js';

const VIEWERS = dw.envInt('DW_VIEWERS', 50);
const BROADCASTS = dw.envInt('DW_BROADCASTS', 10);
const GAP_MS = dw.envInt('DW_GAP_MS', 300);
const P95_MS = dw.envInt('DW_P95_MS', 250);
const CONNECT_S = dw.envInt('DW_CONNECT_S', 60);
const RUN_S = CONNECT_S + Math.ceil((BROADCASTS * (GAP_MS + 200)) / 1000) + 30;

const cueLatency = new Trend('cue_latency', true);
const cuesReceived = new Counter('cues_received');
const cuesMissed = new Counter('cues_missed');
const seqGaps = new Counter('seq_gaps');
const seqOutOfOrder = new Counter('seq_out_of_order');
const connectFailed = new Counter('ws_connect_failed');

export const options = {
  setupTimeout: '30s',
  teardownTimeout: '30s',
  scenarios: {
    viewers: { executor: 'per-vu-iterations', exec: 'viewer', vus: Math.max(1, VIEWERS), iterations: 1, maxDuration: `${RUN_S}s` },
    director: { executor: 'per-vu-iterations', exec: 'director', vus: 1, iterations: 1, maxDuration: `${RUN_S}s` },
  },
  thresholds: {
    cue_latency: [`p(95)<${P95_MS}`],
    cues_received: [`count>=${VIEWERS * BROADCASTS}`],
    cues_missed: ['count==0'],
    seq_gaps: ['count==0'],
    seq_out_of_order: ['count==0'],
    ws_connect_failed: ['count==0'],
    checks: ['rate==1'],
  },
};

export function setup() {
  dw.requireAdmin();
  const id = dw.createDrop('k6-viewers', 1);
  dw.startDrop(id);
  return { id };
}

export function viewer(data) {
  const ws = new WebSocket(dw.wsUrl(data.id));
  const seq = new dw.SeqTracker();
  let welcomed = false;
  let cues = 0;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    clearTimeout(giveUp);
    if (!welcomed) connectFailed.add(1);
    cuesReceived.add(cues);
    cuesMissed.add(Math.max(0, BROADCASTS - cues));
    seqGaps.add(seq.gaps);
    seqOutOfOrder.add(seq.outOfOrder);
  };
  const giveUp = setTimeout(() => ws.close(), RUN_S * 1000);
  ws.onopen = () => ws.send(JSON.stringify({ type: 'hello' }));
  ws.onmessage = (e) => {
    const now = Date.now();
    const msg = JSON.parse(e.data);
    if (msg.type === 'welcome') welcomed = true;
    const latency = seq.see(msg, now);
    if (msg.type === 'cue') {
      if (latency !== null) cueLatency.add(latency);
      if (msg.cue && msg.cue.type === 'cta') cues += 1;
    }
    if (msg.type === 'state' && msg.state === 'closed') ws.close();
  };
  ws.onerror = () => {
    finish();
    ws.close();
  };
  ws.onclose = finish;
}

export function director(data) {
  const counted = dw.waitForViewers(data.id, VIEWERS, CONNECT_S);
  check(counted, { 'every viewer connected before the first cue': (n) => n >= VIEWERS });
  for (let i = 0; i < BROADCASTS; i += 1) {
    dw.fireCue(data.id, { type: 'cta', title: `k6 broadcast ${i}` });
    sleep(GAP_MS / 1000);
  }
  sleep(1);
  dw.closeDrop(data.id);
}
