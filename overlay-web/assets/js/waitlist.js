// The waitlist on the viewer overlay, while the drop is scheduled: one click joins (an
// empty body); a small optional form then tells the maker more (a size, the pieces wanted,
// marketing consent and an e-mail) by posting again (200: the entry is updated, the place
// in line kept). `GET …/waitlist/me` tells a returning viewer whether it is on the list.
// Speaks the viewer routes of docs/api.md ("The funnel") with the overlay's viewer token.
import { $, el, setText } from './views.js';

/** "10 min", "90 s", "1 min 30 s": a duration in seconds, for people. */
export function duration(s) {
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
}

export class Waitlist {
  /**
   * `askHandle(then)`: the viewer has no token; ask for a handle, mint one, then call `then`.
   * `onUnauthorized()`: the hub refused the token (forget it). `onChange()`: render again.
   */
  constructor(dropId, { token = null, askHandle, onUnauthorized, onChange }) {
    this.dropId = dropId;
    this.askHandle = askHandle;
    this.onUnauthorized = onUnauthorized;
    this.onChange = onChange;
    this.status = 'out';    // unknown (asking /me) | out | in | off (no ledger on this hub)
    this.entry = null;      // the viewer's entry, while in
    this.windowS = 0;       // early access after each reveal, in seconds (from the join answer)
    this.busy = false;      // a join or an update in flight
    this.message = '';      // why the last join failed
    this.generation = 0;    // bumps on each token change or join, so a stale answer is ignored
    this.formKey = null;
    this.setToken(token);
  }

  get onList() {
    return this.status === 'in';
  }

  /** A new (or no) viewer token: ask the hub whether it is on the list, unless `check` is false. */
  setToken(token, check = true) {
    this.token = token;
    this.generation += 1;
    this.entry = null;
    this.status = token && check ? 'unknown' : 'out';
    if (this.status === 'unknown') this.check();
  }

  async request(method, path, body) {
    try {
      const resp = await fetch(`/api/v1/drops/${encodeURIComponent(this.dropId)}/waitlist${path}`, {
        method, cache: 'no-store',
        headers: { authorization: `Bearer ${this.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const data = await resp.json().catch(() => ({}));
      return { status: resp.status, data, retryAfter: resp.headers.get('retry-after') };
    } catch {
      return { status: 0, data: {} };
    }
  }

  /** GET …/waitlist/me: 200 on the list, 404 `not_on_waitlist`. */
  async check() {
    if (!this.token) return;
    const gen = this.generation;
    const r = await this.request('GET', '/me');
    if (gen !== this.generation) return;
    if (r.status === 200) this.accept(r.data, true);
    else if (r.status === 503 && r.data?.error?.code === 'ledger_off') this.status = 'off';
    else this.status = 'out'; // 404, or a token the WebSocket will find bad and forget
    this.onChange();
  }

  /** Takes a join (or /me) answer; `fill` puts the entry into the optional form. */
  accept(answer, fill) {
    this.status = 'in';
    this.entry = answer.entry;
    this.entry.position = answer.position;
    this.windowS = answer.early_access?.window_s || 0;
    this.message = '';
    if (fill) this.fill();
  }

  errorOf(r) {
    if (r.status === 0) return 'Connection hiccup — try again.';
    if (r.status === 429) return `Too many tries; wait ${r.retryAfter || 'a few'} s and try again.`;
    return r.data?.error?.message || `Something went wrong (HTTP ${r.status}); try again.`;
  }

  /** The one-click join: an empty body. Without a token, the handle comes first. */
  async join() {
    if (this.busy) return;
    if (!this.token) {
      this.askHandle(() => this.join());
      return;
    }
    this.busy = true;
    this.message = '';
    this.generation += 1;
    const gen = this.generation;
    this.onChange();
    const r = await this.request('POST', '', {});
    this.busy = false;
    if (gen !== this.generation) return;
    if (r.status === 200 || r.status === 201) this.accept(r.data, true);
    else if (r.status === 401) {
      this.onUnauthorized();
      this.askHandle(() => this.join());
    } else this.message = this.errorOf(r);
    this.onChange();
  }

  /** The optional form's body: what it shows, over what the entry holds that it does not show. */
  body() {
    const e = this.entry || { intent: { items: [] }, consent: { marketing: false } };
    const shown = [...document.querySelectorAll('#wl-items input')];
    const ticked = shown.filter((i) => i.checked).map((i) => i.value);
    const hiddenItems = (e.intent.items || []).filter((sku) => !shown.some((i) => i.value === sku));
    const intent = { items: [...hiddenItems, ...ticked] };
    const size = $('wl-size-field').hidden ? e.intent.size : $('wl-size').value;
    if (size) intent.size = size;
    if (e.intent.note) intent.note = e.intent.note;
    const marketing = $('wl-consent').checked;
    const body = { intent, consent: { marketing } };
    const contact = $('wl-contact').value.trim();
    if (marketing && contact) body.contact = contact;
    return body;
  }

  async save(ev) {
    ev.preventDefault();
    if (this.busy || !this.token) return;
    for (const n of document.querySelectorAll('#wl-form .invalid')) n.classList.remove('invalid');
    setText($('wl-error'), '');
    setText($('wl-saved'), '');
    this.busy = true;
    $('wl-save').disabled = true;
    const gen = this.generation;
    const r = await this.request('POST', '', this.body());
    this.busy = false;
    $('wl-save').disabled = false;
    if (gen !== this.generation) return;
    if (r.status === 200 || r.status === 201) {
      this.accept(r.data, false);
      setText($('wl-saved'), 'Saved ✓');
    } else if (r.status === 401) {
      this.onUnauthorized();
    } else {
      setText($('wl-error'), this.errorOf(r));
      const field = r.data?.error?.field || '';
      const node = field.startsWith('contact') ? $('wl-contact') : field.startsWith('intent.size') ? $('wl-size')
        : field.startsWith('intent.items') ? $('wl-items') : field.startsWith('consent') ? $('wl-consent') : null;
      node?.classList.add('invalid');
    }
    this.onChange();
  }

  /** Puts the entry into the form. */
  fill() {
    const e = this.entry;
    if (!e) return;
    $('wl-consent').checked = !!e.consent?.marketing;
    $('wl-contact').value = e.contact || '';
    for (const i of document.querySelectorAll('#wl-items input')) i.checked = (e.intent.items || []).includes(i.value);
    this.sizes(e.intent.size || '');
    this.syncContact();
  }

  /** An e-mail is kept only with marketing consent: the field follows the box. */
  syncContact() {
    const on = $('wl-consent').checked;
    $('wl-contact').disabled = !on;
    $('wl-contact').required = on;
  }

  /** The size choices: the variants of the ticked pieces (of every visible piece when none). */
  sizes(keep = $('wl-size').value) {
    const items = this.visible || [];
    const ticked = [...document.querySelectorAll('#wl-items input:checked')].map((i) => i.value);
    const from = ticked.length ? items.filter((i) => ticked.includes(i.sku)) : items;
    const all = [...new Set(items.flatMap((i) => i.variants || []))];
    const offered = [...new Set(from.flatMap((i) => i.variants || []))];
    $('wl-size-field').hidden = !all.length;
    $('wl-size').replaceChildren(el('option', { value: '' }, 'No preference'),
      ...offered.map((v) => el('option', { value: v }, v)));
    $('wl-size').value = offered.includes(keep) ? keep : '';
  }

  /** The pieces the viewer can see (the viewer snapshot lists revealed items only). */
  renderForm(d) {
    this.visible = d.inventory;
    const key = JSON.stringify(d.inventory.map((i) => [i.sku, i.name, i.variants || []]));
    if (this.formKey === key) return;
    this.formKey = key;
    const ticked = new Set([...document.querySelectorAll('#wl-items input:checked')].map((i) => i.value));
    $('wl-items').replaceChildren(...d.inventory.map((i) => el('label', { class: 'wl-check' },
      el('input', { type: 'checkbox', name: 'items', value: i.sku, checked: ticked.has(i.sku) || null,
        onchange: () => this.sizes() }),
      el('span', {}, i.name))));
    $('wl-items-field').hidden = !d.inventory.length;
    this.sizes();
  }

  /** Shown while the drop is scheduled (and the hub keeps a ledger); true when shown. */
  render(d) {
    const shown = d.state === 'scheduled' && this.status !== 'off';
    $('waitlist').hidden = !shown;
    if (!shown) return false;
    const box = $('waitlist');
    box.dataset.status = this.status;
    const ea = this.status === 'in' ? this.windowS : d.early_access_s || 0;
    setText($('wl-pitch'), ea > 0 ? `On the waitlist you can claim ${duration(ea)} before everyone else.`
      : 'Get on the list, and tell the maker what you are after.');
    $('wl-pitch').hidden = this.status === 'in';
    const join = $('wl-join');
    join.hidden = this.status === 'in';
    join.disabled = this.busy || this.status === 'unknown';
    setText(join, this.busy ? 'Joining…' : this.status === 'unknown' ? 'Checking the list…' : 'Join the waitlist');
    setText($('wl-status'), this.status === 'in' ? `You’re on the list — #${this.entry.position}` : '');
    setText($('wl-early'), this.status === 'in' && ea > 0 ? `Early access: you can claim ${duration(ea)} before everyone else` : '');
    setText($('wl-message'), this.status === 'in' ? '' : this.message);
    $('wl-more').hidden = this.status !== 'in';
    this.renderForm(d);
    return true;
  }

  /** Wires the page's elements. */
  mount() {
    $('wl-join').addEventListener('click', () => this.join());
    $('wl-form').addEventListener('submit', (ev) => this.save(ev));
    $('wl-consent').addEventListener('change', () => {
      this.syncContact();
      setText($('wl-saved'), '');
    });
    $('wl-form').addEventListener('input', () => setText($('wl-saved'), ''));
    return this;
  }
}
