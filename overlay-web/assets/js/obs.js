// The OBS browser source: display only, transparent, 1920×1080. Animates each cue in,
// keeps the stock bar and the top five in fixed corners, reconnects on its own.
import { DropClient, dropIdFromPath, clock, money, el } from './client.js';

const $ = (id) => document.getElementById(id);
const KIND = { intro: 'Live now', reveal: 'Just revealed', flash_coupon: 'Flash coupon', scarcity: 'Going fast',
  quest: 'Quest', cta: 'Heads up', soft_close: 'Last call', close: 'That’s a wrap' };

const client = new DropClient(dropIdFromPath(), { onLog: (m) => console.warn(m) });
let shownCue = null;

function showCue(d) {
  const f = d.current_cue;
  const key = f ? `${f.index}:${f.at_ms}` : null;
  if (key === shownCue) return;
  shownCue = key;
  const box = $('cue');
  if (!f) {
    box.replaceChildren();
    return;
  }
  const item = f.cue.sku ? d.inventory.find((i) => i.sku === f.cue.sku) : null;
  const parts = [el('div', { class: 'kicker' }, KIND[f.cue.type] || f.cue.type),
    el('div', { class: 'title' }, f.cue.title || item?.name || '')];
  if (f.cue.type === 'reveal' && item) parts.push(el('div', { class: 'price' }, `${item.name} · ${money(item.price_cents, d.currency)}`));
  if (f.cue.type === 'flash_coupon') {
    parts.push(el('div', { class: 'code' }, f.cue.code || `${f.cue.percent_off}% OFF`));
  }
  const fresh = el('div', { class: 'cue enter', id: 'cue', 'data-type': f.cue.type }, ...parts);
  box.replaceWith(fresh);
}

function render() {
  const d = client.drop;
  if (!d) return;
  showCue(d);
  $('stock').replaceChildren(...d.stock.map((s) => {
    const item = d.inventory.find((i) => i.sku === s.sku);
    const total = item?.stock || Math.max(s.left, 1);
    const state = s.left === 0 ? 'sold-out' : s.left <= Math.max(3, total * 0.2) ? 'scarce' : 'plenty';
    return el('div', { class: `stock-row ${state}`, 'data-sku': s.sku },
      el('span', {}, item?.name || s.sku),
      el('span', { class: 'stock-bar' }, el('span', { class: 'stock-fill', style: `width:${Math.round((100 * s.left) / total)}%` })),
      el('span', { class: 'stock-left' }, s.left === 0 ? 'SOLD OUT' : `${s.left} left`));
  }));
  const top = d.leaderboard.slice(0, 5);
  $('board').hidden = top.length === 0;
  $('board-list').replaceChildren(...top.map((e) => el('li', {}, el('span', {}, `#${e.rank}`), el('span', {}, e.handle), el('span', {}, e.points))));
  tick();
}

function tick() {
  const d = client.drop;
  if (!d) return;
  const box = $('countdown');
  if (d.state === 'live' && d.next_cue) {
    const label = { close: 'Drop closes in', reveal: 'Next reveal in', flash_coupon: 'Flash coupon in' }[d.next_cue.type] || `${KIND[d.next_cue.type] || d.next_cue.type} in`;
    box.replaceChildren(el('span', {}, label),
      el('span', { class: 'time' }, clock(d.next_cue.at_ms - client.now())));
  } else {
    box.replaceChildren(d.state === 'paused' ? el('span', {}, 'Back in a moment') : '');
  }
}

client.addEventListener('change', render);
setInterval(tick, 250);
client.start();
