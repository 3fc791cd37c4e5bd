// The viewer overlay: countdown, reveal card, coupon, stock, leaderboard, one big Claim button.
import { DropClient, dropIdFromPath, clock, money, el } from './client.js';

const $ = (id) => document.getElementById(id);
const STORE_KEY = 'dropwire.viewer';
const REASONS = {
  sold_out: 'Sold out — every piece has found a home.',
  limit_reached: 'You already have yours. Thank you!',
  not_open: 'Not open yet — wait for the reveal.',
  closed: 'The drop is closed.',
  unauthorized: 'Pick a handle first.',
  rate_limited: 'Easy! Try again in a second.',
  unavailable: 'Connection hiccup — try again.',
};
const KIND = { intro: 'Welcome', reveal: 'Just revealed', flash_coupon: 'Flash coupon', scarcity: 'Going fast',
  quest: 'Quest', cta: 'Heads up', soft_close: 'Last call', close: 'Closed' };

const dropId = dropIdFromPath();
const saved = JSON.parse(localStorage.getItem(STORE_KEY) || 'null');
const client = new DropClient(dropId, { token: saved?.token, onLog: (m) => console.info(m) });
let chosenSku = null;
let hold = null; // {code, sku, until}
let uniqueCode = null;

function revealedSkus(d) {
  return d.fired.filter((f) => f.cue.type === 'reveal' && f.cue.sku).map((f) => f.cue.sku);
}

function currentSku(d) {
  const open = d.open_skus || [];
  if (chosenSku && open.includes(chosenSku)) return chosenSku;
  const revealed = revealedSkus(d).filter((s) => open.includes(s));
  return revealed[revealed.length - 1] || revealedSkus(d).slice(-1)[0] || null;
}

function render() {
  const d = client.drop;
  if (!d) return;
  document.title = `${d.title} · live`;
  $('title').textContent = d.title;
  $('state').textContent = d.state;
  $('state').dataset.state = d.state;
  $('viewers').textContent = `${d.viewers} watching`;

  const cur = d.current_cue;
  const sku = currentSku(d);
  const item = d.inventory.find((i) => i.sku === sku);
  $('cue-kind').textContent = cur ? KIND[cur.cue.type] || cur.cue.type : 'Soon';
  $('cue-title').textContent = cur?.cue.title || (item ? item.name : 'Something handmade is coming');
  $('cue-body').textContent = cur?.cue.body || (item && cur?.cue.type !== 'reveal' ? item.name : '');
  $('price').textContent = item ? `${item.name} · ${money(item.price_cents, d.currency)}` : '';
  const image = cur?.cue.image_url || item?.image_url;
  $('card-image').style.backgroundImage = image ? `url("${image.replace(/"/g, '')}")` : '';
  $('card').dataset.kind = cur?.cue.type || 'none';

  // Which item to claim, when several are open.
  const open = (d.open_skus || []).filter((s) => d.inventory.some((i) => i.sku === s));
  const choice = $('sku-choice');
  choice.replaceChildren(...(open.length > 1 ? open.map((s) => {
    const i = d.inventory.find((x) => x.sku === s);
    return el('button', { type: 'button', role: 'radio', 'aria-checked': String(s === sku), class: 'chip',
      onclick: () => { chosenSku = s; render(); } }, i.name);
  }) : []));

  const stockOf = (s) => d.stock.find((x) => x.sku === s)?.left;
  const left = sku ? stockOf(sku) : undefined;
  const btn = $('claim');
  const canClaim = !!sku && open.includes(sku) && left !== 0 && !!client.token && client.connected;
  const mine = hold && hold.sku === sku;
  btn.disabled = !canClaim || mine;
  btn.textContent = !sku ? 'Claim opens at the reveal'
    : mine ? 'Claimed ✓'
    : left === 0 ? 'Sold out'
    : d.state === 'closed' ? 'Closed'
    : !open.includes(sku) ? 'Not open'
    : `Claim ${item ? item.name : ''}`.trim();

  renderStock(d);
  renderBoard(d);
  renderCoupon(d);
  tick();
}

function renderStock(d) {
  $('stock').replaceChildren(...d.stock.map((s) => {
    const item = d.inventory.find((i) => i.sku === s.sku);
    const total = item?.stock || Math.max(s.left, 1);
    const state = s.left === 0 ? 'sold-out' : s.left <= Math.max(3, total * 0.2) ? 'scarce' : 'plenty';
    const label = s.left === 0 ? 'sold out' : state === 'scarce' ? `only ${s.left} left` : `${s.left} left`;
    return el('li', { class: `stock-row ${state}` },
      el('span', { class: 'stock-name' }, item?.name || s.sku),
      el('span', { class: 'stock-bar', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': s.left },
        el('span', { class: 'stock-fill', style: `width:${Math.round((100 * s.left) / total)}%` })),
      el('span', { class: 'stock-left' }, label));
  }));
}

function renderBoard(d) {
  const rows = d.leaderboard.length ? d.leaderboard.map((e) =>
    el('li', {}, el('span', { class: 'rank' }, e.rank), el('span', { class: 'who' }, e.handle), el('span', { class: 'pts' }, `${e.points}`)))
    : [el('li', { class: 'muted' }, 'First claimers score the most points.')];
  $('board').replaceChildren(...rows);
}

function activeCoupon(d) {
  const now = client.now();
  const live = d.coupons.filter((c) => c.expires_ms > now);
  return live[live.length - 1] || null;
}

function renderCoupon(d) {
  const c = activeCoupon(d);
  $('coupon').dataset.active = c ? 'yes' : 'no';
  const code = c ? (c.unique ? uniqueCode : c.code) : null;
  $('coupon-code').textContent = c ? (code || `${c.percent_off}% off`) : 'No coupon right now';
  $('coupon-copy').disabled = !code;
  $('coupon-get').hidden = !(c && c.unique && !uniqueCode);
}

function tick() {
  const d = client.drop;
  if (!d) return;
  const now = client.now();
  if (d.state === 'live' && d.next_cue) {
    const next = { close: 'The drop closes', reveal: 'Next reveal', flash_coupon: 'Flash coupon' }[d.next_cue.type] || `Next: ${KIND[d.next_cue.type] || d.next_cue.type}`;
    $('next-label').textContent = `${next} in`;
    $('next-time').textContent = clock(d.next_cue.at_ms - now);
  } else {
    $('next-label').textContent = { scheduled: 'The drop starts soon', paused: 'Paused — back in a moment',
      closed: 'Thanks for coming!', live: 'Live now' }[d.state] || '';
    $('next-time').textContent = '';
  }
  const c = activeCoupon(d);
  $('coupon-time').textContent = c ? `ends in ${clock(c.expires_ms - now)}` : '';
  if (hold) {
    const rest = hold.until - now;
    $('claim-result').querySelector('.hold-time')?.replaceChildren(rest > 0 ? `held for you for ${clock(rest)}` : 'hold expired');
  }
}

async function claim() {
  const d = client.drop;
  const sku = d && currentSku(d);
  if (!sku) return;
  $('claim').disabled = true;
  const r = await client.claim(sku);
  const out = $('claim-result');
  if (r.ok) {
    hold = { code: r.code, sku: r.sku, until: r.hold_until_ms };
    out.dataset.ok = 'yes';
    out.replaceChildren(el('span', {}, 'It’s yours! Your claim code:'), el('code', { class: 'claim-code' }, r.code),
      el('span', { class: 'hold-time' }, ''));
  } else {
    out.dataset.ok = 'no';
    out.replaceChildren(el('span', { class: 'reason', 'data-reason': r.reason }, REASONS[r.reason] || r.reason));
  }
  render();
}

async function copyCoupon() {
  const text = $('coupon-code').textContent;
  try {
    await navigator.clipboard.writeText(text);
    $('coupon-copy').textContent = 'Copied';
  } catch {
    const range = document.createRange();
    range.selectNodeContents($('coupon-code'));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
  }
  setTimeout(() => { $('coupon-copy').textContent = 'Copy'; }, 1500);
}

async function join(ev) {
  ev.preventDefault();
  const handle = $('handle').value.trim();
  const resp = await fetch('/api/v1/viewers', { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ handle }) });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    $('join-error').textContent = body?.error?.message || 'Could not join; try again.';
    return;
  }
  localStorage.setItem(STORE_KEY, JSON.stringify(body));
  client.token = body.token;
  $('join').close();
  client.ws?.close(); // reconnect with the token; `since` keeps our place
}

$('claim').addEventListener('click', claim);
$('coupon-copy').addEventListener('click', copyCoupon);
$('coupon-get').addEventListener('click', async () => {
  const r = await client.coupon();
  if (r.ok) uniqueCode = r.code;
  else $('coupon-code').textContent = REASONS[r.reason] || r.reason;
  render();
});
$('join-form').addEventListener('submit', join);
client.addEventListener('change', render);
client.addEventListener('status', (ev) => {
  $('conn').textContent = ev.detail.connected ? '' : 'reconnecting…';
  document.body.dataset.connected = ev.detail.connected ? 'yes' : 'no';
  render();
});
setInterval(tick, 250);
client.start();
if (!saved?.token) $('join').showModal();
