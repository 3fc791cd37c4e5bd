// The OBS browser source: display only, transparent, laid out at 1920×1080. Each cue
// enters with an animation; the countdown, the top five and the stock bar keep to fixed
// corners. It never needs a click: it reconnects on its own and runs on server time.
// With `?chat=1` the chat is a layer too (right, between the board and the stock): the
// pinned message and the last CHAT_SHOWN messages, read-only, host ones marked.
import { DropClient, dropIdFromPath, activeCoupons } from './client.js';
import { $, KIND, NEXT, clock, el, itemOf, money, renderBoard, renderStock, setText } from './views.js';
import { messageRow } from './chat.js';

const LINGER_MS = 15000; // intro, cta, scarcity, soft_close leave the screen after this
const CHAT_SHOWN = 8;
const withChat = new URLSearchParams(location.search).get('chat') === '1';

const client = new DropClient(dropIdFromPath(), { log: (m) => console.warn(m) });
let shownKey = null;

/** Scales the 1920×1080 stage to the source's size (OBS sources are not always 1080p). */
function fit() {
  const s = Math.min(innerWidth / 1920, innerHeight / 1080) || 1;
  $('stage').style.transform = s === 1 ? '' : `scale(${s})`;
}

/** How long a fired cue stays on screen, in server ms (Infinity: until the next cue). */
function visibleUntil(f) {
  switch (f.cue.type) {
    case 'reveal':
    case 'close':
      return Infinity;
    case 'flash_coupon':
      return f.at_ms + (f.cue.ttl_s || 0) * 1000;
    case 'quest':
      return f.at_ms + Math.max(LINGER_MS, (f.cue.ttl_s || 0) * 1000);
    default:
      return f.at_ms + LINGER_MS;
  }
}

function cueCard(d, f) {
  const { cue } = f;
  const item = cue.sku ? itemOf(d, cue.sku) : null;
  const image = cue.type === 'reveal' ? cue.image_url || item?.image_url : cue.image_url;
  const text = [el('div', { class: 'kicker' }, KIND[cue.type] || cue.type)];
  if (cue.type === 'reveal') {
    text.push(el('div', { class: 'title' }, cue.title || item?.name || ''));
    if (item) {
      text.push(el('div', { class: 'price' }, `${item.name} · ${money(item.price_cents, d.currency)}`,
        el('span', { class: 'avail' }, `${item.stock} made`)));
    }
  } else if (cue.type === 'flash_coupon') {
    text.push(el('div', { class: 'title' }, cue.title || `${cue.percent_off}% off everything`));
    text.push(el('div', { class: 'code-row' },
      cue.unique ? el('span', { class: 'code personal' }, 'Your personal code is on the live page') : el('span', { class: 'code' }, cue.code || ''),
      el('span', { class: 'ends', id: 'cue-ends' }, '')));
  } else {
    text.push(el('div', { class: 'title' }, cue.title || (cue.type === 'close' ? 'Thanks for watching!' : KIND[cue.type] || '')));
    if (cue.body) text.push(el('div', { class: 'body' }, cue.body));
  }
  const parts = [];
  if (image) parts.push(el('div', { class: 'thumb', style: { backgroundImage: `url("${image.replace(/["\\\n]/g, '')}")` } }));
  parts.push(el('div', { class: 'text' }, ...text));
  return el('div', { class: 'plate cue enter', 'data-type': cue.type, 'data-key': `${f.index}:${f.at_ms}` }, ...parts);
}

function showCue(d) {
  const f = d.current_cue;
  const now = client.now();
  const visible = f && visibleUntil(f) > now ? f : null;
  const key = visible ? `${visible.index}:${visible.at_ms}` : null;
  if (key === shownKey) return;
  shownKey = key;
  const slot = $('cue-slot');
  for (const old of slot.querySelectorAll('.cue:not(.leave)')) {
    old.classList.remove('enter');
    old.classList.add('leave');
    setTimeout(() => old.remove(), 600);
  }
  if (visible) slot.append(cueCard(d, visible));
}

function render() {
  const d = client.drop;
  if (!d) return;
  showCue(d);
  renderStock($('stock'), d);
  $('board').hidden = !renderBoard($('board-list'), d.leaderboard, { top: 5 });
  if (withChat) renderChat(d.chat);
  tick();
}

/** The chat layer: the pin, then the newest messages (oldest first), nothing when silent. */
function renderChat(c) {
  const shown = c.recent.slice(-CHAT_SHOWN);
  const key = JSON.stringify([c.pinned?.id ?? null, shown.map((m) => m.id)]);
  const box = $('chat');
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.hidden = !c.pinned && !shown.length;
  $('chat-pinned').replaceChildren(...(c.pinned ? [messageRow(c.pinned, { tag: 'div', pinned: true })] : []));
  const list = $('chat-list');
  const had = new Map([...list.children].map((n) => [n.dataset.id, n]));
  list.replaceChildren(...shown.map((m) => had.get(m.id) || messageRow(m, { tag: 'div' })));
}

function tick() {
  const d = client.drop;
  if (!d) return;
  const now = client.now();
  showCue(d);
  const box = $('countdown');
  if (d.state === 'live' && d.next_cue) {
    box.hidden = false;
    box.dataset.state = 'live';
    setText($('countdown-label'), NEXT[d.next_cue.type] || 'Next up in');
    setText($('countdown-time'), clock(d.next_cue.at_ms - now));
    const from = d.current_cue?.at_ms || d.started_ms || now;
    $('countdown-bar').style.width = `${Math.max(0, Math.min(100, (100 * (now - from)) / Math.max(1, d.next_cue.at_ms - from)))}%`;
  } else if (d.state === 'paused') {
    box.hidden = false;
    box.dataset.state = 'paused';
    setText($('countdown-label'), 'Paused');
    setText($('countdown-time'), 'back soon');
    $('countdown-bar').style.width = '0%';
  } else {
    box.hidden = true;
  }
  const coupons = activeCoupons(d, now);
  const c = coupons[coupons.length - 1];
  const inSlot = shownKey && d.current_cue?.cue.type === 'flash_coupon';
  $('coupon').hidden = !c || inSlot;
  if (c) {
    setText($('coupon-label'), `Flash coupon · −${c.percent_off}%`);
    setText($('coupon-code'), c.code || 'code on the live page');
    setText($('coupon-time'), `ends in ${clock(c.expires_ms - now)}`);
  }
  const ends = $('cue-ends');
  if (ends && c) setText(ends, `ends in ${clock(c.expires_ms - now)}`);
}

addEventListener('resize', fit);
fit();
if (!withChat) $('chat').remove(); // no chat layer at all without ?chat=1
client.addEventListener('change', render);
setInterval(tick, 250);
client.start();
