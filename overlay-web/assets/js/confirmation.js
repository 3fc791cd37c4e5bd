// The viewer's confirmation after a granted claim, when the drop has a follow-up: what was
// claimed, "check out before HH:MM" with the claim code, the follow-up coupon for the next
// order and the maker's cross-sell links. It lies over the reveal card (on a phone over the
// countdown too) at exactly that box's size, so nothing else on the page moves; × puts the
// card back, "Order details" under the Claim button brings it again. Kept in localStorage
// per drop, like the holds, so a reload shows it again. A reveal of another piece after it
// was shown folds it away (the new piece matters more then).
import { $, copyText, el, money, pad2, setText } from './views.js';

/** "14:32" */
export function hhmm(ms) {
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** "Wed 9 Dec, 14:32" */
export function dayTime(ms) {
  const d = new Date(ms);
  return `${d.toLocaleDateString([], { weekday: 'short', day: 'numeric', month: 'short' })}, ${hhmm(ms)}`;
}

const httpUrl = (u) => /^https?:\/\//i.test(u || '');

export class Confirmation {
  /** `now()`: server time in ms. `onChange()`: render the page again. */
  constructor(dropId, { now, onChange }) {
    this.key = `dropwire.confirm.${dropId}`;
    this.now = now;
    this.onChange = onChange;
    try {
      this.entries = JSON.parse(localStorage.getItem(this.key)) || {};
    } catch {
      this.entries = {};
    }
    this.shown = null; // the sku whose confirmation is on screen
    this.drawn = null; // what the box was last drawn from
  }

  save() {
    try {
      localStorage.setItem(this.key, JSON.stringify(this.entries));
    } catch { /* private mode: it lasts as long as the page */ }
  }

  /** A granted `claim_result`; shows its confirmation when it carries a `follow_up`. */
  add(result, d) {
    if (!result.ok || !result.follow_up) return;
    const sku = result.sku;
    const item = d?.inventory.find((i) => i.sku === sku);
    const at = this.now();
    this.entries[sku] = {
      sku, code: result.code, until: result.hold_until_ms, at, since: at, dismissed: false,
      name: item?.name || sku, price_cents: item?.price_cents ?? null, currency: d?.currency || 'EUR',
      follow_up: { coupon: result.follow_up.coupon || null, cross_sell: result.follow_up.cross_sell || [] },
    };
    this.save();
  }

  has(sku) {
    return !!this.entries[sku];
  }

  /** Shows the confirmation of `sku` again. */
  open(sku) {
    const e = this.entries[sku];
    if (!e) return;
    e.dismissed = false;
    e.since = this.now();
    this.save();
    this.onChange();
    $('confirm-close').focus();
  }

  dismiss() {
    const e = this.entries[this.shown];
    if (!e) return;
    e.dismissed = true;
    this.save();
    const sku = this.shown;
    this.onChange();
    document.querySelector(`.confirm-open[data-sku="${CSS.escape(sku)}"]`)?.focus();
  }

  /** The entry to show: the newest not dismissed, and not overtaken by a later reveal of another piece. */
  current(d) {
    const reveals = d.fired.filter((f) => f.cue.type === 'reveal');
    const live = Object.values(this.entries).filter((e) => !e.dismissed
      && !reveals.some((f) => f.cue.sku !== e.sku && f.at_ms > e.since));
    return live.sort((a, b) => b.since - a.since)[0] || null;
  }

  /** "Order details" for the hold view under the Claim button (null without a confirmation). */
  openButton(sku) {
    if (!this.has(sku)) return null;
    return el('button', { type: 'button', class: 'confirm-open', 'data-sku': sku, hidden: this.shown === sku,
      onclick: () => this.open(sku) }, 'Order details ›');
  }

  render(d) {
    const e = this.current(d);
    this.shown = e ? e.sku : null;
    $('confirm').hidden = !e;
    $('app').dataset.confirm = e ? 'yes' : 'no';
    for (const b of document.querySelectorAll('.confirm-open')) b.hidden = b.dataset.sku === this.shown;
    if (!e) {
      this.drawn = null;
      return;
    }
    const key = JSON.stringify(e);
    if (this.drawn !== key) {
      this.drawn = key;
      this.draw(e);
    }
    this.tick();
  }

  draw(e) {
    setText($('confirm-item'), e.name);
    setText($('confirm-price'), e.price_cents === null ? '' : money(e.price_cents, e.currency));
    setText($('confirm-code'), e.code);
    const c = e.follow_up.coupon;
    $('confirm-coupon').hidden = !c;
    if (c) {
      $('confirm-coupon-text').replaceChildren(`${c.percent_off}% off your next order — `,
        el('code', { class: 'confirm-coupon-code' }, c.code), `, valid until ${dayTime(c.expires_ms)}`);
    }
    const links = e.follow_up.cross_sell.filter((x) => httpUrl(x.url));
    $('confirm-more').hidden = !links.length;
    $('confirm-links').replaceChildren(...links.map((x) => el('li', {},
      el('a', { href: x.url, target: '_blank', rel: 'noopener', class: 'confirm-link' },
        el('span', { class: 'confirm-link-name' }, x.name),
        el('span', { class: 'confirm-link-price' }, money(x.price_cents, e.currency))))));
  }

  /** The checkout line follows the clock: "before 14:32", then "ended at 14:32". */
  tick() {
    const e = this.shown && this.entries[this.shown];
    if (!e) return;
    const over = e.until <= this.now();
    $('confirm-checkout').dataset.expired = over ? 'yes' : 'no';
    setText($('confirm-checkout-lead'), over ? 'Your hold ended at ' : 'Check out before ');
    setText($('confirm-until'), hhmm(e.until));
    setText($('confirm-checkout-tail'), over ? ' — your code was' : ' with code');
  }

  mount() {
    $('confirm-close').addEventListener('click', () => this.dismiss());
    $('confirm').addEventListener('keydown', (ev) => { if (ev.key === 'Escape') this.dismiss(); });
    for (const b of document.querySelectorAll('#confirm [data-copy-from]')) {
      b.addEventListener('click', () => {
        const node = $(b.dataset.copyFrom);
        const code = node.querySelector('code') || node;
        copyText(code.textContent, b, code);
      });
    }
    return this;
  }
}
