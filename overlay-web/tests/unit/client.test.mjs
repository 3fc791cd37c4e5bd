// Unit tests of the pages' WebSocket client (assets/js/client.js) with node's test runner:
// a fake WebSocket class is handed to DropClient (its `WebSocket` option) and plays the
// hub's side frame by frame, and node's mock timers stand in for the clock, so backoff,
// resume, gap handling, the claim's rid reuse and the silence limit are checked exactly.
// The browser tests drive the same module over a real socket.
import { test, mock, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  DropClient, backoffMs, claimWindow, earlyAccessUntil, elapsedAt, revealedSkus, activeCoupons,
} from '../../assets/js/client.js';

const T0 = 1_700_000_000_000;

/** A fake WebSocket class: each instance is a connection the test answers as the hub. */
function fakeSockets() {
  class FakeSocket {
    static all = [];

    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      FakeSocket.all.push(this);
    }

    send(text) {
      if (this.readyState !== 1) throw new Error('send on a socket that is not open');
      this.sent.push(JSON.parse(text));
    }

    /** The client closes it: like a browser, the close event comes a little later. */
    close(code = 1005) {
      if (this.readyState >= 2) return;
      this.readyState = 2;
      this.closedBy = code;
      queueMicrotask(() => {
        this.readyState = 3;
        this.onclose?.({ code, reason: '' });
      });
    }

    // The hub's side.
    accept() {
      this.readyState = 1;
      this.onopen?.();
    }

    receive(msg) {
      this.onmessage?.({ data: typeof msg === 'string' ? msg : JSON.stringify(msg) });
    }

    lose(code = 1006) {
      this.readyState = 3;
      this.onclose?.({ code, reason: '' });
    }

    of(type) {
      return this.sent.filter((f) => f.type === type);
    }
  }
  return FakeSocket;
}

const snapshotDrop = (over = {}) => ({
  id: 'mugs', title: 'Mugs', state: 'scheduled', elapsed_s: 0, duration_s: 600, server_ms: T0,
  inventory: [], fired: [], current_cue: null, next_cue: null, open_skus: [], early_access: [],
  coupons: [], stock: [], leaderboard: [], viewers: 0, ...over,
});

let Socket;
let logged;
let clients;

beforeEach(() => {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: T0 });
  Socket = fakeSockets();
  logged = [];
  clients = [];
});

afterEach(() => {
  for (const c of clients) c.stop();
  mock.timers.reset();
  mock.restoreAll();
});

function newClient(opts = {}) {
  const c = new DropClient('mugs', { WebSocket: Socket, url: 'ws://hub/ws/v1/drops/mugs', log: (m) => logged.push(m), ...opts });
  clients.push(c);
  return c;
}

/** Records every event of `type` the client emits. */
function events(client, type) {
  const seen = [];
  client.addEventListener(type, (ev) => seen.push(ev.detail));
  return seen;
}

/** Starts a client and brings its first socket to a live, snapshotted state at `seq`. */
function connected(opts = {}, { seq = 10, drop = snapshotDrop() } = {}) {
  const client = newClient(opts);
  client.start();
  const ws = Socket.all.at(-1);
  ws.accept();
  ws.receive({ type: 'welcome', viewer_id: opts.token ? 'v1' : null, server_ms: T0, seq });
  ws.receive({ type: 'snapshot', seq, drop });
  return { client, ws };
}

/** Lets queued microtasks (a fake socket's close event) run. */
const settle = () => new Promise((ok) => { queueMicrotask(ok); });

test('backoff: exponential from 1 s, capped at 30 s, with "equal jitter" (half to all of the step)', () => {
  for (let attempt = 0; attempt < 12; attempt += 1) {
    const step = Math.min(30000, 1000 * 2 ** attempt);
    const none = mock.method(Math, 'random', () => 0);
    assert.equal(backoffMs(attempt), step / 2, `attempt ${attempt}, no jitter`);
    none.mock.restore();
    const all = mock.method(Math, 'random', () => 0.999999);
    assert.ok(Math.abs(backoffMs(attempt) - step) < 0.1, `attempt ${attempt}, all jitter`);
    all.mock.restore();
    for (let i = 0; i < 200; i += 1) {
      const d = backoffMs(attempt);
      assert.ok(d >= step / 2 && d <= step, `attempt ${attempt}: ${d} within [${step / 2}, ${step}]`);
    }
  }
});

test('hello: the viewer token, else the visitor id; the maker sends its admin token instead', () => {
  const viewer = newClient({ token: 'dw1.tok', visitor: 'visitor-123' });
  viewer.start();
  Socket.all[0].accept();
  assert.deepEqual(Socket.all[0].sent[0], { type: 'hello', token: 'dw1.tok' });
  assert.equal(Socket.all[0].url, 'ws://hub/ws/v1/drops/mugs');

  const anon = newClient({ visitor: 'visitor-123' });
  anon.start();
  Socket.all[1].accept();
  assert.deepEqual(Socket.all[1].sent[0], { type: 'hello', visitor: 'visitor-123' });

  const maker = newClient({ admin: 'admin-token', token: 'dw1.tok' });
  const statuses = events(maker, 'status');
  maker.start();
  Socket.all[2].accept();
  assert.deepEqual(Socket.all[2].sent[0], { type: 'hello', admin: 'admin-token' });
  // A ping follows the hello at once, for the clock offset.
  assert.equal(Socket.all[2].sent[1].type, 'ping');
  Socket.all[2].receive({ type: 'welcome', viewer_id: null, server_ms: T0, seq: 0, maker: true });
  assert.equal(maker.maker, true);
  assert.equal(maker.connected, true);
  assert.deepEqual(statuses.at(-1), { connected: true, viewerId: null, handle: null, attempt: 0, retryAt: null });
});

test('snapshot: the drop with its lists filled in, its seq, and when elapsed_s was taken', () => {
  const client = newClient();
  const changes = events(client, 'change');
  client.start();
  const ws = Socket.all[0];
  ws.accept();
  ws.receive({ type: 'welcome', viewer_id: null, server_ms: T0, seq: 7 });
  ws.receive({ type: 'snapshot', seq: 7, drop: { id: 'mugs', state: 'live', elapsed_s: 12.5, duration_s: 600, server_ms: T0 + 40, viewers: 3 } });
  assert.equal(client.seq, 7);
  for (const k of ['inventory', 'fired', 'open_skus', 'early_access', 'coupons', 'stock', 'leaderboard']) {
    assert.deepEqual(client.drop[k], [], k);
  }
  assert.equal(client.drop.elapsed_at_ms, T0 + 40);
  assert.deepEqual(changes, [{ kind: 'snapshot' }]);
});

test('broadcasts apply in seq order: state, a reveal with its item, stock, leaderboard, viewers, a coupon, the close', () => {
  const { client, ws } = connected({}, { seq: 10 });
  const kinds = events(client, 'change');
  ws.receive({ type: 'state', seq: 11, ts: T0 + 100, state: 'live', elapsed_s: 0, next_cue: { index: 1, type: 'reveal', at_ms: T0 + 3100 } });
  assert.equal(client.drop.state, 'live');
  assert.equal(client.drop.elapsed_at_ms, T0 + 100);
  assert.deepEqual(client.drop.next_cue, { index: 1, type: 'reveal', at_ms: T0 + 3100 });

  const item = { sku: 'mug', name: 'Speckled mug', price_cents: 3400, stock: 5, per_viewer_limit: 1 };
  ws.receive({ type: 'cue', seq: 12, ts: T0 + 3100, index: 1, at_ms: T0 + 3100, cue: { at_s: 3, type: 'reveal', sku: 'mug', title: 'Here' }, item });
  assert.deepEqual(client.drop.inventory, [item]);
  assert.deepEqual(client.drop.stock, [{ sku: 'mug', left: 5 }], 'the whole stock is left until a stock frame');
  assert.deepEqual(revealedSkus(client.drop), ['mug']);
  assert.deepEqual(client.drop.open_skus, ['mug']);
  assert.equal(client.drop.current_cue.index, 1);
  assert.equal(client.drop.next_cue, null, 'absent after the last cue');

  ws.receive({ type: 'stock', seq: 13, ts: T0 + 3200, items: [{ sku: 'mug', left: 4 }] });
  ws.receive({ type: 'leaderboard', seq: 14, ts: T0 + 3200, top: [{ rank: 1, handle: 'ana', points: 100 }] });
  ws.receive({ type: 'viewers', seq: 15, ts: T0 + 3300, count: 42 });
  assert.deepEqual(client.drop.stock, [{ sku: 'mug', left: 4 }]);
  assert.deepEqual(client.drop.leaderboard, [{ rank: 1, handle: 'ana', points: 100 }]);
  assert.equal(client.drop.viewers, 42);

  ws.receive({ type: 'cue', seq: 16, ts: T0 + 4000, index: null, at_ms: T0 + 4000,
    cue: { type: 'flash_coupon', code: 'KILN10', percent_off: 10, ttl_s: 120, title: '10% off' } });
  assert.deepEqual(client.drop.coupons, [{ index: null, title: '10% off', code: 'KILN10', percent_off: 10, unique: false, expires_ms: T0 + 124000 }]);
  assert.equal(activeCoupons(client.drop, T0 + 123999).length, 1);
  assert.equal(activeCoupons(client.drop, T0 + 124000).length, 0);

  ws.receive({ type: 'cue', seq: 17, ts: T0 + 5000, index: 2, at_ms: T0 + 5000, cue: { type: 'close' } });
  assert.equal(client.drop.state, 'closed');
  assert.equal(client.seq, 17);
  assert.deepEqual(kinds.map((k) => k.kind), ['state', 'cue', 'stock', 'leaderboard', 'viewers', 'cue', 'cue']);
  assert.equal(kinds[2].message.items[0].left, 4, 'the change event carries the frame');
});

test('a broadcast already applied (a repeat, or one from before the snapshot) changes nothing', () => {
  const { client, ws } = connected({}, { seq: 10, drop: snapshotDrop({ viewers: 5 }) });
  const kinds = events(client, 'change');
  ws.receive({ type: 'viewers', seq: 10, ts: T0, count: 99 });
  ws.receive({ type: 'viewers', seq: 3, ts: T0, count: 98 });
  assert.equal(client.drop.viewers, 5);
  assert.equal(client.seq, 10);
  assert.deepEqual(kinds, []);
  assert.equal(Socket.all.length, 1, 'no reconnect either');
});

test('a gap in seq: the client drops the socket at once and resumes with since = the last seq it applied', async () => {
  const { client, ws } = connected({ token: 'dw1.tok' }, { seq: 10 });
  ws.receive({ type: 'viewers', seq: 11, ts: T0, count: 1 });
  ws.receive({ type: 'viewers', seq: 13, ts: T0, count: 3 }); // 12 is missing
  assert.equal(client.drop.viewers, 1, 'the frame after the gap is not applied');
  assert.equal(client.seq, 11);
  assert.equal(client.connected, false);
  assert.equal(ws.closedBy, 1005);
  assert.ok(logged.some((m) => m.includes('missed broadcasts 12..12')), logged.join('\n'));
  await settle();
  mock.timers.tick(0);
  assert.equal(Socket.all.length, 2, 'reconnected without a backoff wait');
  const again = Socket.all[1];
  again.accept();
  assert.deepEqual(again.sent[0], { type: 'hello', token: 'dw1.tok', since: 11 });
  // The hub fills the gap from its history, and the frames apply again.
  again.receive({ type: 'welcome', viewer_id: 'v1', server_ms: T0, seq: 13 });
  again.receive({ type: 'viewers', seq: 12, ts: T0, count: 2 });
  again.receive({ type: 'viewers', seq: 13, ts: T0, count: 3 });
  assert.equal(client.drop.viewers, 3);
  assert.equal(client.seq, 13);
});

test('a resume the hub cannot fill comes as a fresh snapshot, which replaces the drop', async () => {
  const { client, ws } = connected({}, { seq: 10, drop: snapshotDrop({ viewers: 5 }) });
  mock.method(Math, 'random', () => 0);
  ws.lose(1001);
  mock.timers.tick(500);
  const again = Socket.all[1];
  again.accept();
  assert.equal(again.sent[0].since, 10);
  again.receive({ type: 'welcome', viewer_id: null, server_ms: T0, seq: 5000 });
  again.receive({ type: 'snapshot', seq: 5000, drop: snapshotDrop({ state: 'closed', viewers: 1 }) });
  assert.equal(client.seq, 5000);
  assert.equal(client.drop.state, 'closed');
  assert.equal(client.drop.viewers, 1);
  again.receive({ type: 'viewers', seq: 5001, ts: T0, count: 2 });
  assert.equal(client.drop.viewers, 2);
  await settle();
});

test('reconnects forever, each wait a backoff step longer, back to the first step once welcomed', () => {
  mock.method(Math, 'random', () => 0.5); // three quarters of each step
  const client = newClient();
  const statuses = events(client, 'status');
  client.start();
  const waits = [];
  for (let i = 0; i < 7; i += 1) {
    Socket.all.at(-1).lose(1006);
    const wait = client.retryAt - Date.now();
    waits.push(wait);
    assert.equal(Socket.all.length, i + 1, 'no new socket before the wait is over');
    mock.timers.tick(wait - 1);
    assert.equal(Socket.all.length, i + 1);
    mock.timers.tick(1);
    assert.equal(Socket.all.length, i + 2);
  }
  assert.deepEqual(waits, [750, 1500, 3000, 6000, 12000, 22500, 22500]);
  assert.ok(logged[0].includes('cannot connect to drop "mugs"'), 'the first failure says what to check');
  assert.equal(statuses.at(-1).connected, false);
  assert.equal(statuses.at(-1).attempt, 7);

  const ws = Socket.all.at(-1);
  ws.accept();
  ws.receive({ type: 'welcome', viewer_id: null, server_ms: T0, seq: 1 });
  assert.equal(client.attempt, 0);
  ws.lose(1006);
  assert.equal(client.retryAt - Date.now(), 750);
  assert.ok(logged.at(-1).includes('connection lost (close 1006)'));
});

test('a claim unanswered when the socket drops is sent again with the same rid after the reconnect', async () => {
  const { client, ws } = connected({ token: 'dw1.tok' });
  const result = client.claim('mug');
  const [sent] = ws.of('claim');
  assert.equal(sent.sku, 'mug');
  assert.match(sent.rid, /^claim-[0-9a-z]+-[0-9a-z]+$/);

  mock.method(Math, 'random', () => 0);
  ws.lose(1006);
  mock.timers.tick(500);
  const again = Socket.all[1];
  again.accept();
  assert.deepEqual(again.of('claim'), [], 'not before the welcome: the hub needs the hello first');
  again.receive({ type: 'welcome', viewer_id: 'v1', server_ms: T0, seq: 10 });
  assert.deepEqual(again.of('claim'), [sent], 'the same frame, the same rid');

  again.receive({ type: 'claim_result', rid: 'someone-else', ok: true, code: 'X' });
  again.receive({ type: 'claim_result', rid: sent.rid, ok: true, code: 'ABCD-EFGH-JKMN-PQRS', sku: 'mug', hold_until_ms: T0 + 900000 });
  assert.deepEqual(await result, { type: 'claim_result', rid: sent.rid, ok: true, code: 'ABCD-EFGH-JKMN-PQRS', sku: 'mug', hold_until_ms: T0 + 900000 });
  assert.equal(client.pending.size, 0);
  mock.timers.tick(60000);
  await settle();
});

test('a claim made while disconnected waits for the welcome; one never answered gives up as "unavailable" after 15 s', async () => {
  const client = newClient({ token: 'dw1.tok' });
  client.start();
  const waiting = client.claim('mug');
  const ws = Socket.all[0];
  ws.accept();
  ws.receive({ type: 'welcome', viewer_id: 'v1', server_ms: T0, seq: 0 });
  const [sent] = ws.of('claim');
  assert.equal(sent.sku, 'mug');
  mock.timers.tick(14999);
  assert.equal(client.pending.size, 1);
  mock.timers.tick(1);
  assert.deepEqual(await waiting, { type: 'claim_result', rid: sent.rid, ok: false, reason: 'unavailable' });
  assert.equal(client.pending.size, 0);
  // Each request has its own rid.
  client.coupon();
  const [coupon] = ws.of('coupon');
  assert.notEqual(coupon.rid, sent.rid);
  assert.match(coupon.rid, /^coupon-/);
});

test('30 s without a frame: the socket is taken for dead and the client resumes at once', async () => {
  const { client, ws } = connected({}, { seq: 4 });
  mock.timers.tick(10000);
  mock.timers.tick(10000);
  mock.timers.tick(10000);
  assert.equal(ws.of('ping').length, 4, 'a ping on open, then every 10 s');
  assert.equal(client.connected, true, 'exactly 30 s is not yet too long');
  mock.timers.tick(10000);
  assert.equal(client.connected, false);
  assert.ok(logged.some((m) => m.includes('no frame from the server for 30 s')));
  await settle();
  mock.timers.tick(0);
  assert.equal(Socket.all.length, 2);
  Socket.all[1].accept();
  assert.equal(Socket.all[1].sent[0].since, 4);

  // Any frame, a pong too, keeps a socket alive.
  const live = Socket.all[1];
  live.receive({ type: 'welcome', viewer_id: null, server_ms: Date.now(), seq: 4 });
  for (let i = 0; i < 6; i += 1) {
    mock.timers.tick(10000);
    live.receive({ type: 'pong', ts: Date.now(), server_ms: Date.now() });
  }
  assert.equal(client.connected, true);
  assert.equal(Socket.all.length, 2);
});

test('the server clock: the pong with the shortest round trip sets the offset', () => {
  const { client, ws } = connected();
  const SKEW = 5000; // the server is 5 s ahead
  const pong = (rtt) => {
    const sentAt = Date.now();
    mock.timers.tick(rtt);
    ws.receive({ type: 'pong', ts: sentAt, server_ms: sentAt + rtt / 2 + SKEW });
  };
  pong(400);
  assert.equal(client.offsetMs, SKEW);
  assert.equal(client.now(), Date.now() + SKEW);
  // A slower pong, whose server time is off by its asymmetry, does not replace it.
  const sentAt = Date.now();
  mock.timers.tick(1000);
  ws.receive({ type: 'pong', ts: sentAt, server_ms: sentAt + 900 + SKEW });
  assert.equal(client.offsetMs, SKEW);
  assert.equal(client.rttMs, 1000);
  pong(20);
  assert.equal(client.offsetMs, SKEW);
  // A pong without our ts says nothing about the round trip.
  ws.receive({ type: 'pong', ts: 'x', server_ms: 1 });
  assert.equal(client.samples.length, 3);
});

test('frames that are not JSON, of unknown types, or unasked replies are ignored; an error frame is told', () => {
  const { client, ws } = connected({}, { seq: 1 });
  const changes = events(client, 'change');
  const errors = events(client, 'servererror');
  ws.receive('{not json');
  ws.receive('[1,2]');
  ws.receive({ type: 'chat', text: 'hi' }); // a future frame without seq
  ws.receive({ type: 'coupon_result', rid: 'nobody', ok: true });
  ws.receive({ type: 'error', code: 'bad_admin_token', message: 'the admin token is wrong; watching as a viewer' });
  assert.deepEqual(changes, []);
  assert.deepEqual(errors, [{ code: 'bad_admin_token', message: 'the admin token is wrong; watching as a viewer' }]);
  assert.ok(logged.includes('dropwire: server said bad_admin_token: the admin token is wrong; watching as a viewer'));
  // A future broadcast type still moves seq (so no false gap after it).
  ws.receive({ type: 'chat', seq: 2, ts: T0, text: 'hi' });
  ws.receive({ type: 'viewers', seq: 3, ts: T0, count: 1 });
  assert.equal(client.seq, 3);
  assert.equal(client.connected, true);
  assert.deepEqual(changes.map((c) => c.kind), ['chat', 'viewers']);
});

test('a new viewer token reconnects with it, keeping its place; stop() ends the reconnecting', async () => {
  const { client, ws } = connected({ visitor: 'visitor-123' }, { seq: 8 });
  client.setToken('dw1.new');
  assert.equal(ws.closedBy, 1005);
  await settle();
  mock.timers.tick(0);
  const again = Socket.all[1];
  again.accept();
  assert.deepEqual(again.sent[0], { type: 'hello', token: 'dw1.new', since: 8 });

  client.stop();
  assert.equal(again.closedBy, 1000);
  await settle();
  mock.timers.tick(120000);
  assert.equal(Socket.all.length, 2, 'no reconnect after stop()');
});

test('claim windows: open after the reveal, early access until public_ms, closed after the close', () => {
  const reveal = (sku, at) => ({ index: 1, at_ms: at, cue: { type: 'reveal', sku } });
  const d = snapshotDrop({ state: 'live', fired: [reveal('mug', T0)], early_access: [{ sku: 'mug', public_ms: T0 + 60000 }] });
  assert.equal(claimWindow(d, 'vase', T0), 'not_open', 'not revealed');
  assert.equal(claimWindow(d, 'mug', T0 + 59999), 'early');
  assert.equal(earlyAccessUntil(d, 'mug', T0), T0 + 60000);
  assert.equal(claimWindow(d, 'mug', T0 + 60000), 'open');
  assert.equal(earlyAccessUntil(d, 'mug', T0 + 60000), null);
  assert.equal(claimWindow({ ...d, state: 'paused' }, 'mug', T0 + 60000), 'not_open');
  assert.equal(claimWindow({ ...d, state: 'closed' }, 'mug', T0 + 60000), 'closed');

  // A reveal broadcast with public_ms starts the window; a second reveal of the SKU does not.
  const { client, ws } = connected({}, { seq: 1, drop: snapshotDrop({ state: 'live' }) });
  ws.receive({ type: 'cue', seq: 2, ts: T0, index: 1, at_ms: T0, public_ms: T0 + 30000, cue: { type: 'reveal', sku: 'mug' } });
  assert.deepEqual(client.drop.early_access, [{ sku: 'mug', public_ms: T0 + 30000 }]);
  assert.deepEqual(client.drop.open_skus, [], 'in early access, nobody but the waitlist');
  ws.receive({ type: 'cue', seq: 3, ts: T0, index: 2, at_ms: T0 + 10000, public_ms: T0 + 40000, cue: { type: 'reveal', sku: 'mug' } });
  assert.deepEqual(client.drop.early_access, [{ sku: 'mug', public_ms: T0 + 30000 }]);
});

test('elapsedAt: runs from elapsed_at_ms while live, stands still otherwise, within the script', () => {
  const d = snapshotDrop({ state: 'live', elapsed_s: 10, elapsed_at_ms: T0, duration_s: 600 });
  assert.equal(elapsedAt(d, T0 + 2500), 12.5);
  assert.equal(elapsedAt(d, T0 + 10_000_000), 600);
  assert.equal(elapsedAt({ ...d, state: 'paused' }, T0 + 2500), 10);
  assert.equal(elapsedAt({ ...d, elapsed_s: 0 }, T0 - 5000), 0);
});
