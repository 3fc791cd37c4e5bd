// The shared dropwire client: one WebSocket to a drop, resumed with `since` after any
// drop of the connection, with a server-clock offset so every countdown runs on server
// time (OBS pauses hidden sources and local timers drift). Pages listen for `change`
// and `status` events and read `client.drop`, the viewer snapshot kept current from
// broadcasts. Speaks only the public API (docs/api.md). The control panel uses it too, as
// the maker (`admin`: the admin token, so the hub does not count it as a viewer).
//
// The browser is reached only through `start()`, `url()` and the `WebSocket` class (an
// option, so node's unit tests can hand it a fake one): importing this module touches nothing.

// The DOM helpers live in views.js; re-exported for modules that import them from here.
export { clock, money, scarcity, el, setText } from './views.js';
import { applyChat, chatOf } from './chat.js';

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const PING_EVERY_MS = 10000;
const SILENCE_LIMIT_MS = 30000;   // no frame for this long: the socket is dead, reconnect
const REQUEST_TIMEOUT_MS = 15000; // a claim unanswered this long (across reconnects) gives up
const CLOCK_SAMPLES = 8;
const OPEN = 1;                   // WebSocket.OPEN

/** The drop id from `/live/{id}` or `/obs/{id}`. */
export function dropIdFromPath() {
  const parts = location.pathname.split('/').filter(Boolean);
  return decodeURIComponent(parts[1] || '');
}

/** The delay before reconnect attempt `attempt` (0-based): exponential, capped, jittered. */
export function backoffMs(attempt) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
  return base / 2 + (Math.random() * base) / 2; // "equal jitter": half to all of the step
}

/** This browser's anonymous visitor id (random, kept in localStorage), or null. */
export function visitorId() {
  const key = 'dropwire.visitor';
  try {
    let id = localStorage.getItem(key);
    if (!id || !/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
      const bytes = crypto.getRandomValues(new Uint8Array(12));
      id = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
      localStorage.setItem(key, id);
    }
    return id;
  } catch {
    return null; // storage blocked: counted per connection
  }
}

/**
 * One drop's connection. Events: `status` (connected or not, who), `change` (the drop moved:
 * `{kind: 'snapshot'}` or `{kind: <broadcast type>, message}`), `servererror` (an `error`
 * frame: `{code, message}`).
 */
export class DropClient extends EventTarget {
  /**
   * `token`: a viewer token (claims need one); `visitor`: an anonymous viewer's own id;
   * `admin`: the maker's admin token instead (the panel); `WebSocket`: the socket class;
   * `url`: the socket's address (by default the page's host).
   */
  constructor(dropId, { token = null, visitor = null, admin = null, log = () => {}, WebSocket = globalThis.WebSocket, url = null } = {}) {
    super();
    this.dropId = dropId;
    this.token = token;
    this.visitor = visitor;   // an anonymous viewer's own id, so it counts once across visits
    this.admin = admin;
    this.maker = false;       // the hub took `admin` (welcome's `maker`)
    this.log = log;
    this.WebSocket = WebSocket;
    this.fixedUrl = url;
    this.drop = null;         // the viewer snapshot, updated by broadcasts
    this.seq = null;          // last broadcast seq applied
    this.viewerId = null;
    this.handle = null;
    this.connected = false;
    this.everConnected = false;
    this.attempt = 0;
    this.retryAt = null;      // local ms of the next reconnect attempt, while waiting
    this.samples = [];        // [{rtt, offset}] from pongs
    this.offsetMs = 0;        // server clock − local clock
    this.pending = new Map(); // rid → {msg, resolve, timer}
    this.ws = null;
    this.lastFrameAt = 0;
    this.stopped = false;
  }

  /** Server time now, in ms. */
  now() {
    return Date.now() + this.offsetMs;
  }

  start() {
    this.connect();
    this.pinger = setInterval(() => this.heartbeat(), PING_EVERY_MS);
    if (typeof document === 'undefined') return;
    this.onVisible = () => {
      // OBS and phones suspend hidden pages: come back at once rather than at the next backoff step.
      if (!document.hidden && !this.connected) this.reconnectSoon(0);
      if (!document.hidden && this.connected) this.ping();
    };
    document.addEventListener('visibilitychange', this.onVisible);
    addEventListener('online', this.onVisible);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.pinger);
    clearTimeout(this.retry);
    this.retryAt = null;
    if (this.onVisible) {
      document.removeEventListener('visibilitychange', this.onVisible);
      removeEventListener('online', this.onVisible);
    }
    this.ws?.close(1000);
  }

  url() {
    if (this.fixedUrl) return this.fixedUrl;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    return `${scheme}://${location.host}/ws/v1/drops/${encodeURIComponent(this.dropId)}`;
  }

  connect() {
    clearTimeout(this.retry);
    this.retryAt = null;
    if (this.stopped) return;
    let ws;
    try {
      ws = new this.WebSocket(this.url());
    } catch (e) {
      this.log(`dropwire: cannot open a WebSocket: ${e.message}`);
      this.reconnectSoon();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const hello = { type: 'hello' };
      if (this.admin) hello.admin = this.admin;
      else if (this.token) hello.token = this.token;
      else if (this.visitor) hello.visitor = this.visitor;
      if (this.seq !== null) hello.since = this.seq;
      ws.send(JSON.stringify(hello));
      this.lastFrameAt = Date.now();
      this.ping();
    };
    ws.onmessage = (ev) => {
      this.lastFrameAt = Date.now();
      this.onFrame(ev.data);
    };
    ws.onclose = (ev) => this.closed(ws, ev.code, ev.reason);
    ws.onerror = () => {};
  }

  /** Forgets `ws` and schedules the next attempt. */
  closed(ws, code, reason) {
    if (this.ws !== ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    this.ws = null;
    const was = this.connected;
    this.connected = false;
    if (!this.everConnected && this.attempt === 0) {
      // The server refuses the upgrade of an unknown drop with 404, which a browser reports as 1006.
      this.log(`dropwire: cannot connect to drop "${this.dropId}" (close ${code}${reason ? `: ${reason}` : ''}); is the id right and the server up? Retrying.`);
    } else if (was && code !== 1000 && code !== 4000) {
      this.log(`dropwire: connection lost (close ${code}${reason ? `: ${reason}` : ''}); reconnecting`);
    }
    this.reconnectSoon();
    this.emit('status', this.status());
  }

  /** Drops the current socket (a seq gap, or silence) and reconnects with `since`. */
  restart(why) {
    const ws = this.ws;
    if (!ws) return;
    this.log(`dropwire: ${why}; resuming`);
    this.closed(ws, 4000, why);
    try { ws.close(); } catch { /* already closing */ }
    this.reconnectSoon(0);
  }

  reconnectSoon(delay) {
    if (this.stopped) return;
    clearTimeout(this.retry);
    if (delay === undefined) {
      delay = backoffMs(this.attempt);
      this.attempt += 1;
    }
    this.retryAt = Date.now() + delay;
    this.retry = setTimeout(() => this.connect(), delay);
  }

  status() {
    return { connected: this.connected, viewerId: this.viewerId, handle: this.handle,
      attempt: this.attempt, retryAt: this.retryAt };
  }

  heartbeat() {
    if (this.connected && Date.now() - this.lastFrameAt > SILENCE_LIMIT_MS) {
      this.restart('no frame from the server for 30 s');
      return;
    }
    this.ping();
  }

  ping() {
    this.send({ type: 'ping', ts: Date.now() });
  }

  send(msg) {
    if (!this.ws || this.ws.readyState !== OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /**
   * Sends a request with a fresh rid and resolves with the server's reply. An unanswered
   * request is sent again, with the same rid, after a reconnect: the server answers the
   * same rid with the same result, so a claim whose answer was lost is never lost.
   */
  request(msg) {
    const rid = `${msg.type}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const full = { ...msg, rid };
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        resolve({ type: `${msg.type}_result`, rid, ok: false, reason: 'unavailable' });
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(rid, { msg: full, resolve, timer });
      if (this.connected) this.send(full);
    });
  }

  /** Uses a new viewer token from now on (reconnects; `since` keeps our place). */
  setToken(token) {
    this.token = token;
    if (this.ws) this.restart('new viewer token');
    else this.reconnectSoon(0);
  }

  claim(sku) {
    return this.request({ type: 'claim', sku });
  }

  coupon() {
    return this.request({ type: 'coupon' });
  }

  /** Says `text` in the drop's chat; resolves with the `chat_result`. */
  chat(text) {
    return this.request({ type: 'chat', text });
  }

  /** "I'm here" for an open `be_there` quest (`quest`: its script index; null: the latest). */
  here(quest) {
    return this.request(quest === null || quest === undefined ? { type: 'here' } : { type: 'here', quest });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  clockSample(serverMs, rtt) {
    this.samples.push({ rtt, offset: serverMs + rtt / 2 - Date.now() });
    if (this.samples.length > CLOCK_SAMPLES) this.samples.shift();
    // The sample with the shortest round trip bounds the error best.
    const best = this.samples.reduce((a, b) => (b.rtt < a.rtt ? b : a));
    this.offsetMs = best.offset;
    this.rttMs = rtt;
  }

  onFrame(text) {
    let m;
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    switch (m.type) {
      case 'welcome':
        this.connected = true;
        this.everConnected = true;
        this.attempt = 0;
        this.viewerId = m.viewer_id;
        this.handle = m.handle || null;
        this.maker = !!m.maker;
        if (!this.samples.length) this.offsetMs = m.server_ms - Date.now();
        for (const p of this.pending.values()) this.send(p.msg);
        this.emit('status', this.status());
        return;
      case 'snapshot':
        this.drop = normalize(m.drop);
        this.drop.elapsed_at_ms = m.drop.server_ms;
        this.seq = m.seq;
        if (!this.samples.length) this.offsetMs = m.drop.server_ms - Date.now();
        this.emit('change', { kind: 'snapshot' });
        return;
      case 'pong':
        if (typeof m.ts === 'number') this.clockSample(m.server_ms, Math.max(0, Date.now() - m.ts));
        return;
      case 'draw_entered': {
        // Fair start: the claim is in a draw; its claim_result comes at draw_at_ms. Wait for
        // it that long (and the usual timeout after); a reconnect sends the rid again.
        const p = this.pending.get(m.rid);
        if (p) {
          clearTimeout(p.timer);
          const wait = Math.max(0, m.draw_at_ms - this.now()) + REQUEST_TIMEOUT_MS;
          p.timer = setTimeout(() => {
            this.pending.delete(m.rid);
            p.resolve({ type: 'claim_result', rid: m.rid, ok: false, reason: 'unavailable' });
          }, wait);
        }
        this.emit('drawentered', { rid: m.rid, sku: m.sku, draw_at_ms: m.draw_at_ms });
        return;
      }
      case 'claim_result':
      case 'chat_result':
      case 'coupon_result':
      case 'quest_result': {
        const p = this.pending.get(m.rid);
        // A keyword quest earned by a chat message: after its chat_result, with the chat's rid.
        if (!p && m.type === 'quest_result') this.emit('quest', m);
        if (!p) return;
        this.pending.delete(m.rid);
        clearTimeout(p.timer);
        p.resolve(m);
        return;
      }
      case 'error':
        this.log(`dropwire: server said ${m.code}: ${m.message}`);
        this.emit('servererror', { code: m.code, message: m.message });
        return;
      default:
        if (typeof m.seq === 'number') this.onBroadcast(m);
    }
  }

  onBroadcast(m) {
    if (this.seq !== null && m.seq <= this.seq) return;
    if (this.seq !== null && m.seq !== this.seq + 1) {
      // A gap: reconnect with `since`; the server fills it or sends a fresh snapshot.
      this.restart(`missed broadcasts ${this.seq + 1}..${m.seq - 1}`);
      return;
    }
    this.seq = m.seq;
    const d = this.drop;
    if (!d) return;
    switch (m.type) {
      case 'state':
        d.state = m.state;
        d.elapsed_s = m.elapsed_s;
        d.elapsed_at_ms = m.ts; // the server time `elapsed_s` was taken at
        d.next_cue = m.next_cue || null;
        break;
      case 'cue': {
        const fired = { index: m.index, at_ms: m.at_ms, cue: m.cue };
        // The first reveal of a SKU starts its early-access window (a second reveal does not).
        const sku = m.cue.type === 'reveal' ? m.cue.sku : null;
        if (sku && typeof m.public_ms === 'number' && !revealedSkus(d).includes(sku)) {
          d.early_access = d.early_access.filter((e) => e.sku !== sku).concat([{ sku, public_ms: m.public_ms }]);
        }
        d.fired.push(fired);
        d.current_cue = fired;
        if (m.item) {
          const at = d.inventory.findIndex((i) => i.sku === m.item.sku);
          if (at < 0) d.inventory.push(m.item);
          else d.inventory[at] = m.item;
          // Nobody can claim before the reveal, so the whole stock is left until a `stock` says otherwise.
          if (!d.stock.some((s) => s.sku === m.item.sku)) d.stock.push({ sku: m.item.sku, left: m.item.stock });
        }
        if (m.cue.type === 'flash_coupon' && m.cue.ttl_s) {
          d.coupons.push({
            index: m.index, title: m.cue.title, code: m.cue.code, percent_off: m.cue.percent_off || 0,
            unique: !!m.cue.unique, expires_ms: m.at_ms + m.cue.ttl_s * 1000,
          });
        }
        if (m.cue.type === 'close') d.state = 'closed';
        d.next_cue = m.next_cue || null; // sent while live, absent after the last cue
        break;
      }
      case 'stock':
        d.stock = m.items;
        break;
      case 'leaderboard':
        d.leaderboard = m.top;
        break;
      case 'viewers':
        d.viewers = m.count;
        break;
      default:
        applyChat(d.chat, m); // chat, chat_delete, chat_pin, chat_settings
        break;
    }
    d.open_skus = openSkus(d, this.now());
    this.emit('change', { kind: m.type, message: m });
  }
}

/** Seconds into the script at server time `now`: it runs only while live, up to the duration. */
export function elapsedAt(d, now) {
  const e = d.state === 'live' ? d.elapsed_s + (now - d.elapsed_at_ms) / 1000 : d.elapsed_s;
  return Math.max(0, Math.min(e, d.duration_s));
}

/** SKUs revealed by fired cues. */
export function revealedSkus(d) {
  return [...new Set(d.fired.filter((f) => f.cue.type === 'reveal' && f.cue.sku).map((f) => f.cue.sku))];
}

/**
 * When the public may claim `sku`, while it is in its early-access window at server time
 * `now` (only the drop's waitlist may claim it until then); null otherwise.
 */
export function earlyAccessUntil(d, sku, now) {
  const e = d.early_access.find((x) => x.sku === sku);
  return e && e.public_ms > now ? e.public_ms : null;
}

/**
 * The claim window of `sku` at server time `now` (the server's rule): `open` to everyone,
 * `early` (the waitlist only, until `earlyAccessUntil`), `not_open` or `closed`.
 */
export function claimWindow(d, sku, now) {
  if (d.state === 'closed') return 'closed';
  if (d.state !== 'live' || !sku || !revealedSkus(d).includes(sku)) return 'not_open';
  return earlyAccessUntil(d, sku, now) === null ? 'open' : 'early';
}

/** SKUs anyone may claim at `now`: every revealed SKU past its early access, while live. */
function openSkus(d, now) {
  return revealedSkus(d).filter((sku) => claimWindow(d, sku, now) === 'open');
}

function normalize(d) {
  for (const k of ['inventory', 'fired', 'open_skus', 'early_access', 'coupons', 'stock', 'leaderboard']) d[k] = d[k] || [];
  d.chat = chatOf(d.chat);
  return d;
}

/** Coupons still running at server time `now`, newest last. */
/** The quests whose window is open at `now`: `{key, index, kind, title, points, closes_ms}`. */
export function openQuests(d, now) {
  return d.fired
    .filter((f) => f.cue.type === 'quest' && f.cue.ttl_s && f.at_ms <= now && f.at_ms + f.cue.ttl_s * 1000 > now)
    .map((f) => ({
      key: f.index === null || f.index === undefined ? `at${f.at_ms}` : `s${f.index}`,
      index: f.index ?? null, kind: f.cue.quest || null, title: f.cue.title || null, word: f.cue.word || null,
      points: f.cue.points || 0, closes_ms: f.at_ms + f.cue.ttl_s * 1000,
    }));
}

export function activeCoupons(d, now) {
  return d.coupons.filter((c) => c.expires_ms > now);
}
