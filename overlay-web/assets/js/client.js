// The shared dropwire client: one WebSocket to a drop, resumed with `since` after any
// drop of the connection, with a server-clock offset so every countdown runs on server
// time. Pages subscribe to `change` and read `client.drop` (the snapshot, kept current).

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const PING_EVERY_MS = 10000;

export function dropIdFromPath() {
  const parts = location.pathname.split('/').filter(Boolean);
  return decodeURIComponent(parts[1] || '');
}

export class DropClient extends EventTarget {
  constructor(dropId, { token = null, onLog = () => {} } = {}) {
    super();
    this.dropId = dropId;
    this.token = token;
    this.log = onLog;
    this.drop = null;          // the viewer snapshot, updated by broadcasts
    this.seq = null;           // last broadcast seq seen
    this.viewerId = null;
    this.offsetMs = 0;         // server clock − local clock
    this.rttMs = null;
    this.connected = false;
    this.attempt = 0;
    this.pending = new Map();  // rid → resolve
    this.ws = null;
    this.stopped = false;
  }

  /** Server time now, in ms. */
  now() {
    return Date.now() + this.offsetMs;
  }

  start() {
    this.connect();
    this.pinger = setInterval(() => this.ping(), PING_EVERY_MS);
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && !this.connected) this.reconnectSoon(0);
    });
  }

  url() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    return `${scheme}://${location.host}/ws/v1/drops/${encodeURIComponent(this.dropId)}`;
  }

  connect() {
    clearTimeout(this.retry);
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (e) {
      this.reconnectSoon();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const hello = { type: 'hello' };
      if (this.token) hello.token = this.token;
      if (this.seq !== null) hello.since = this.seq;
      ws.send(JSON.stringify(hello));
      this.ping();
    };
    ws.onmessage = (ev) => this.onFrame(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.connected = false;
      this.emit('status', { connected: false, code: ev.code });
      if (ev.code === 1006 && this.attempt === 0 && !this.everConnected) {
        this.log(`dropwire: cannot connect to drop ${this.dropId}`);
      }
      for (const resolve of this.pending.values()) resolve({ ok: false, reason: 'unavailable' });
      this.pending.clear();
      this.reconnectSoon();
    };
    ws.onerror = () => {};
  }

  reconnectSoon(delay) {
    if (this.stopped) return;
    clearTimeout(this.retry);
    if (delay === undefined) {
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
      delay = base / 2 + Math.random() * base / 2; // jitter: half to full backoff
      this.attempt += 1;
    }
    this.retry = setTimeout(() => this.connect(), delay);
  }

  ping() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: 'ping', ts: Date.now() }));
    }
  }

  send(msg) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** Sends a request with a fresh rid; resolves with the reply. */
  request(msg) {
    const rid = `${msg.type}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    return new Promise((resolve) => {
      if (!this.send({ ...msg, rid })) {
        resolve({ ok: false, reason: 'unavailable' });
        return;
      }
      this.pending.set(rid, resolve);
    });
  }

  claim(sku) {
    return this.request({ type: 'claim', sku });
  }

  coupon() {
    return this.request({ type: 'coupon' });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
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
        this.offsetMs = m.server_ms - Date.now();
        this.emit('status', { connected: true, viewerId: m.viewer_id, handle: m.handle });
        if (this.seq !== null && m.seq === this.seq) this.emit('change', { kind: 'resume' });
        return;
      case 'snapshot':
        this.drop = m.drop;
        this.seq = m.seq;
        this.offsetMs = m.drop.server_ms - Date.now();
        this.emit('change', { kind: 'snapshot' });
        return;
      case 'pong':
        if (typeof m.ts === 'number') {
          const rtt = Date.now() - m.ts;
          this.rttMs = rtt;
          this.offsetMs = m.server_ms + rtt / 2 - Date.now();
        }
        return;
      case 'claim_result':
      case 'coupon_result': {
        const resolve = this.pending.get(m.rid);
        this.pending.delete(m.rid);
        if (resolve) resolve(m);
        return;
      }
      case 'error':
        this.log(`dropwire: ${m.code}: ${m.message}`);
        return;
      default:
        if (typeof m.seq === 'number') this.onBroadcast(m);
    }
  }

  onBroadcast(m) {
    if (this.seq !== null && m.seq <= this.seq) return;
    if (this.seq !== null && m.seq !== this.seq + 1 && this.ws) {
      // A gap: reconnect and resume, the server fills it or sends a snapshot.
      this.ws.close();
      return;
    }
    this.seq = m.seq;
    const d = this.drop;
    if (!d) return;
    switch (m.type) {
      case 'state':
        d.state = m.state;
        d.elapsed_s = m.elapsed_s;
        d.next_cue = m.next_cue || null;
        if (m.state === 'closed') d.open_skus = [];
        break;
      case 'cue': {
        const fired = { index: m.index, at_ms: m.at_ms, cue: m.cue };
        d.fired.push(fired);
        d.current_cue = fired;
        if (m.item && !d.inventory.some((i) => i.sku === m.item.sku)) d.inventory.push(m.item);
        if (m.cue.type === 'reveal' && m.cue.sku && d.state === 'live' && !d.open_skus.includes(m.cue.sku)) {
          d.open_skus.push(m.cue.sku);
        }
        if (m.cue.type === 'flash_coupon') {
          d.coupons.push({
            index: m.index, title: m.cue.title, code: m.cue.code, percent_off: m.cue.percent_off,
            unique: !!m.cue.unique, expires_ms: m.at_ms + (m.cue.ttl_s || 0) * 1000,
          });
        }
        if (m.cue.type === 'close') d.open_skus = [];
        d.next_cue = m.next_cue || null;
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
        break;
    }
    this.emit('change', { kind: m.type, message: m });
  }
}

/** "1:05" from milliseconds. */
export function clock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}

export function money(cents, currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}

/** Creates an element: el('div', {class: 'x'}, 'text', child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
