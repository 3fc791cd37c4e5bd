// The viewer's collectible passes (earned across a maker's drops: attendance, claims, quest
// points), read with its own token from `GET /api/v1/me/passes`: a row per pass under the
// board, a revoked one struck through. Read when the page connects as a viewer, again a few
// seconds later (a pass is earned by the ledger just after the fact that completes it), and
// then every 30 s while the page is open. Without a pass the box stays hidden.
import { $, el, setText } from './views.js';

const AGAIN_MS = 3000;
const EVERY_MS = 30000;

export class MyPasses {
  constructor() {
    this.token = null;
    this.passes = [];
    this.timer = null;
    this.drawn = '';
  }

  mount() {
    setInterval(() => this.refresh(), EVERY_MS);
    return this;
  }

  /** A new token (or none): read the passes now and once more shortly. */
  setToken(token) {
    this.token = token || null;
    if (!this.token) {
      this.passes = [];
      this.draw();
      return;
    }
    this.refresh();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), AGAIN_MS);
  }

  async refresh() {
    if (!this.token) return;
    try {
      const resp = await fetch('/api/v1/me/passes', { headers: { Authorization: `Bearer ${this.token}` } });
      if (!resp.ok) return; // no ledger, or a stale token: keep what is shown
      this.passes = (await resp.json()).passes || [];
    } catch {
      return; // offline for a moment: the next read will do
    }
    this.draw();
  }

  draw() {
    const key = JSON.stringify(this.passes.map((p) => [p.id, p.revoked_ms || 0]));
    if (key === this.drawn) return;
    this.drawn = key;
    const list = $('pass-list');
    list.replaceChildren(...this.passes.map((p) => {
      const name = p.rule.replace(/-/g, ' ');
      return el('li', { class: p.revoked_ms ? 'pass revoked' : 'pass', 'data-pass': p.id, 'data-rule': p.rule },
        el('span', { class: 'pass-name' }, name),
        el('span', { class: 'pass-maker' }, p.revoked_ms ? 'revoked' : `by ${p.maker}`));
    }));
    $('passes').hidden = this.passes.length === 0;
    setText($('passes-count'), String(this.passes.filter((p) => !p.revoked_ms).length));
  }
}
