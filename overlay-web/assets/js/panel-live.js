// The open drop in the control panel, live. The drop's WebSocket (client.js, as the maker:
// the hub does not count the panel as a viewer; it resumes with `since` and reconnects with
// backoff by itself) carries the state, the fired cues, the stock and the viewers now. What
// no broadcast carries (peak and unique viewers, claims by state, conversion, the latest
// claims) is read from `GET …/stats` and `…/claims`: after the broadcasts that move it (a
// `stock` or `leaderboard` frame: a claim; `viewers`: the stats only), at most once a
// second, and otherwise every 10 s (a redemption at the shop sends no broadcast).
import { DropClient, elapsedAt } from './client.js';
import { $, el, scarcity, setText } from './views.js';

const READ_GAP_MS = 1000;    // reads prompted by broadcasts are at least this far apart
const READ_EVERY_MS = 10000; // the slow read of what no broadcast announces

export class LiveDrop {
  /**
   * `api(method, path)`: the panel's admin HTTP call. `serverNow()`: server time from the
   * HTTP answers, until the socket has its own. `onChange(kind)`: a broadcast (or a
   * snapshot) moved the drop. `onRefused()`: the hub refused the admin token.
   */
  constructor(id, { admin, api, serverNow, onChange, onRefused }) {
    this.id = id;
    this.api = api;
    this.serverNow = serverNow;
    this.onChange = onChange;
    this.spec = null;        // the admin snapshot (script, the whole inventory, OBS key), set by the panel
    this.stats = null;       // the last `…/stats`
    this.readAt = 0;         // local ms of the last read of stats and claims
    this.timer = null;       // a read waiting for READ_GAP_MS
    this.wanted = null;      // what that read is for: {claims}
    this.busy = false;
    this.stopped = false;
    this.client = new DropClient(id, { admin, log: (m) => console.info(m) });
    this.client.addEventListener('change', (ev) => this.changed(ev.detail.kind));
    this.client.addEventListener('servererror', (ev) => {
      if (ev.detail.code === 'bad_admin_token') onRefused();
    });
  }

  start() {
    this.client.start();
    this.read(true);
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.client.stop();
  }

  /** Server time now, in ms. */
  now() {
    return this.client.everConnected ? this.client.now() : this.serverNow();
  }

  /** The drop as shown: the admin snapshot, with the live state from the socket. */
  drop() {
    const s = this.spec;
    const live = this.client.drop;
    if (!s || !live) return s && { ...s, elapsed_at_ms: s.server_ms };
    return {
      ...s, state: live.state, elapsed_s: live.elapsed_s, elapsed_at_ms: live.elapsed_at_ms,
      fired: live.fired, current_cue: live.current_cue, next_cue: live.next_cue,
    };
  }

  /** Seconds into the script, now. */
  elapsed() {
    const d = this.drop();
    return d ? elapsedAt(d, this.now()) : 0;
  }

  changed(kind) {
    if (kind === 'stock' || kind === 'leaderboard' || kind === 'snapshot') this.readSoon(true);
    else if (kind === 'viewers') this.readSoon(false);
    this.onChange(kind);
    this.render();
  }

  /** Every second: the slow read, when nothing prompted one for READ_EVERY_MS. */
  tick() {
    if (!document.hidden && !this.busy && !this.timer && Date.now() - this.readAt >= READ_EVERY_MS) this.read(true);
  }

  readSoon(claims) {
    this.wanted = { claims: claims || !!this.wanted?.claims };
    if (this.timer || this.busy) return; // the waiting (or the next) read takes it
    this.timer = setTimeout(() => this.read(), Math.max(0, this.readAt + READ_GAP_MS - Date.now()));
  }

  /** Reads the stats (and the claims) now. */
  async read(claims = false) {
    clearTimeout(this.timer);
    this.timer = null;
    const withClaims = claims || !!this.wanted?.claims;
    this.wanted = null;
    if (this.stopped) return;
    this.busy = true;
    this.readAt = Date.now();
    const id = encodeURIComponent(this.id);
    const [s, c] = await Promise.all([this.api('GET', `/drops/${id}/stats`),
      withClaims ? this.api('GET', `/drops/${id}/claims`) : null]);
    this.busy = false;
    if (this.stopped) return;
    if (s.ok) this.stats = s.data;
    if (c?.ok) renderClaims(c.data.claims);
    this.render();
    if (this.wanted) this.readSoon(this.wanted.claims); // broadcasts came while reading
  }

  /** The live figures: viewers and stock from the socket, the rest from the last read. */
  render() {
    const s = this.stats;
    const live = this.client.drop;
    const now = live ? live.viewers : s?.viewers.now;
    if (now === undefined) return;
    setText($('f-now'), String(now));
    if (s) {
      setText($('f-peak'), String(Math.max(s.viewers.peak, now)));
      setText($('f-unique'), String(s.viewers.unique ?? '—'));
      setText($('f-held'), String(s.claims.held));
      setText($('f-redeemed'), String(s.claims.redeemed));
      setText($('f-expired'), String(s.claims.expired));
      setText($('f-conv'), `${Math.round(100 * (s.conversion || 0))}%`);
    }
    // Every SKU (a viewer's socket hears of the revealed ones only): the socket's figure
    // where it has one, else the last read's.
    const base = s?.stock || this.spec?.stock || [];
    const stock = base.map((x) => live?.stock.find((l) => l.sku === x.sku) || x);
    renderStock(stock, this.spec?.inventory || []);
  }
}

function renderStock(stock, inv) {
  const key = JSON.stringify(stock);
  if ($('f-stock').dataset.key === key) return;
  $('f-stock').dataset.key = key;
  $('f-stock').replaceChildren(...stock.map((x) => {
    const item = inv.find((i) => i.sku === x.sku);
    const total = item?.stock || Math.max(1, x.left);
    return el('li', { 'data-sku': x.sku, class: scarcity(x.left, total) },
      el('span', { class: 'stock-name', title: x.sku }, item?.name || x.sku),
      el('span', { class: 'stock-bar' }, el('span', { class: 'stock-fill', style: { width: `${(100 * x.left) / total}%` } })),
      el('span', { class: 'stock-left' }, `${x.left} / ${total}`));
  }));
}

function renderClaims(claims) {
  const latest = claims.slice().sort((a, b) => b.created_ms - a.created_ms).slice(0, 8);
  $('f-claims').replaceChildren(...(latest.length ? latest.map((c) => el('li', { class: `claim ${c.state}` },
    el('span', { class: 'claim-who' }, c.handle), el('span', { class: 'claim-sku' }, c.sku),
    el('code', {}, c.code), el('span', { class: `state s-${c.state}` }, c.state)))
    : [el('li', { class: 'none' }, 'No claims yet.')]));
}
