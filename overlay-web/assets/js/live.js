// The viewer overlay: countdown, reveal card, flash coupon, open quests ("I’m here") and the
// viewer’s points, stock, leaderboard, one big Claim button. Every box keeps its size
// whatever arrives, so nothing jumps under a thumb.
import { DropClient, visitorId, dropIdFromPath, activeCoupons, openQuests, revealedSkus, claimWindow, earlyAccessUntil } from './client.js';
import { $, KIND, NEXT, clock, copyText, el, itemOf, money, pad2, renderBoard, renderStock, scarcity, setText } from './views.js';
import { Waitlist } from './waitlist.js';
import { Confirmation } from './confirmation.js';
import { MyPasses } from './passes.js';
import { LiveChat } from './live-chat.js';

const VIEWER_KEY = 'dropwire.viewer';
const dropId = dropIdFromPath();
const HOLDS_KEY = `dropwire.holds.${dropId}`;

const REASONS = {
  sold_out: 'Sold out — every piece has found a home.',
  limit_reached: 'You already have yours — one per person.',
  not_open: 'Not open yet — claims open at the reveal.',
  closed: 'The drop is closed.',
  unauthorized: 'Pick a handle first, then claim.',
  rate_limited: 'Easy there — try again in a second.',
  unavailable: 'Connection hiccup — try again.',
};

const load = (key, fallback) => {
  try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; }
};
let me = load(VIEWER_KEY, null); // {viewer_id, token, handle}
const holds = load(HOLDS_KEY, {}); // sku → {code, sku, until}
const failures = {};               // sku → reason of the last refused claim
const opensAt = {};                // sku → when the public may claim, from a `not_open` refusal
const drawAt = {};                 // sku → when the fair-start draw this viewer entered is held
const uniqueCodes = {};            // coupon expires_ms → personal code
const questResults = {};           // quest key → {ok, points, reason} of this viewer's "I'm here"
const QUEST_HOW = {
  be_there: 'Tap “I’m here” in time',
  claim_within: 'Claim a piece in time',
  redeem_within: 'Check out in time',
  keyword: 'Say the word in the chat',
};
const QUEST_REASONS = {
  already_awarded: 'Already yours ✓',
  full: 'Too late: the first ones got it.',
  not_open: 'This quest has ended.',
  unauthorized: 'Pick a handle first.',
  unavailable: 'Connection hiccup — try again.',
};
let chosenSku = null;
let claiming = false;
let afterMint = null;              // what to do once the handle dialog has minted a token

const client = new DropClient(dropId, { token: me?.token, visitor: visitorId(), log: (m) => console.info(m) });
const waitlist = new Waitlist(dropId, {
  token: me?.token,
  askHandle: (then) => {
    afterMint = then;
    openJoin('waitlist');
  },
  onUnauthorized: () => forgetMe(false),
  onChange: () => render(),
}).mount();
// The viewer's passes, under the board (read with its token once the hub accepted it).
const myPasses = new MyPasses().mount();
// After a granted claim of a drop with a follow-up: the order details over the reveal card.
const confirmation = new Confirmation(dropId, { now: () => client.now(), onChange: () => render() }).mount();
// The chat under the stock and the board: an input once the viewer has a handle.
const chat = new LiveChat(client, { signedIn: () => !!me, join: () => openJoin('chat'), onUnauthorized: () => forgetMe() }).mount();

function leftOf(d, sku) {
  return d.stock.find((s) => s.sku === sku)?.left;
}

/** The SKU the card and the button are about: the chosen one, else the newest reveal. */
function focusSku(d) {
  const revealed = revealedSkus(d).filter((s) => itemOf(d, s));
  if (chosenSku && revealed.includes(chosenSku)) return chosenSku;
  const current = d.current_cue?.cue;
  if (current?.type === 'reveal' && revealed.includes(current.sku)) return current.sku;
  return revealed[revealed.length - 1] || null;
}

function render() {
  const d = client.drop;
  if (!d) return;
  document.title = `${d.title} · live`;
  setText($('title'), d.title);
  const stateLabel = { scheduled: 'soon', live: 'live', paused: 'paused', closed: 'ended' }[d.state] || d.state;
  setText($('state'), stateLabel);
  $('state').dataset.state = d.state;
  $('app').dataset.state = d.state;
  setText($('viewers'), `${d.viewers} watching`);
  renderMe();
  renderCard(d);
  confirmation.render(d);
  // Before the drop, the waitlist takes the place of the claim result under the button.
  $('claim-result').hidden = waitlist.render(d);
  renderClaim(d);
  renderStock($('stock'), d, { empty: 'Stock shows up at the reveal.' });
  renderBoard($('board'), d.leaderboard, { top: 10, mine: me?.handle, empty: 'The first claimers score the most points.' });
  renderCoupon(d);
  renderQuests(d);
  chat.render();
  tick();
}

/** The open quests (an "I'm here" button for `be_there`) and this viewer's points. */
function renderQuests(d) {
  const now = client.now();
  const open = openQuests(d, now);
  const box = $('quests');
  box.hidden = open.length === 0;
  const key = JSON.stringify([open.map((q) => q.key), questResults, !!me, client.connected]);
  if (box.dataset.key !== key) {
    box.dataset.key = key;
    $('quest-list').replaceChildren(...open.map((q) => {
      const done = questResults[q.key];
      const row = el('li', { class: 'quest', 'data-quest': q.key, 'data-kind': q.kind || '' },
        el('span', { class: 'quest-title' }, q.title || 'Quest'),
        el('span', { class: 'quest-pts' }, `+${q.points} pts`),
        el('span', { class: 'quest-how' }, q.kind === 'keyword' && q.word ? `Say “${q.word}” in the chat` : QUEST_HOW[q.kind] || ''),
        el('span', { class: 'quest-time' }, ''));
      if (q.kind === 'keyword' && done) {
        row.append(done.ok ? el('span', { class: 'quest-done' }, `+${done.points} pts ✓`)
          : el('span', { class: 'reason', 'data-reason': done.reason }, QUEST_REASONS[done.reason] || done.reason));
      }
      if (q.kind === 'be_there') {
        if (done?.ok) row.append(el('span', { class: 'quest-done' }, `+${done.points} pts ✓`));
        else {
          if (done) row.append(el('span', { class: 'reason', 'data-reason': done.reason }, QUEST_REASONS[done.reason] || done.reason));
          row.append(el('button', {
            type: 'button', class: 'small-button quest-here', disabled: !client.connected,
            onclick: () => imHere(q),
          }, 'I’m here'));
        }
      }
      return row;
    }));
  }
  for (const q of open) {
    const t = $('quest-list').querySelector(`[data-quest="${q.key}"] .quest-time`);
    if (t) setText(t, `ends in ${clock(q.closes_ms - now)}`);
  }
  // The viewer's own points: its row on the board, else what its quests earned here.
  const mine = me && d.leaderboard.find((e) => e.handle === me.handle);
  const earned = Object.values(questResults).reduce((n, r) => n + (r.ok ? r.points : 0), 0);
  const points = mine ? mine.points : earned;
  // Always there for a signed-in viewer (0 before any), so a first claim moves nothing.
  $('my-points').hidden = !me;
  setText($('my-points'), `Your points: ${points}`);
  $('my-points').dataset.points = String(points);
}

async function imHere(q) {
  if (!me) {
    openJoin();
    return;
  }
  const r = await client.here(q.index);
  questResults[q.key] = r.ok ? { ok: true, points: r.points } : { ok: false, reason: r.reason };
  if (r.reason === 'already_awarded') questResults[q.key] = { ok: true, points: q.points };
  if (r.reason === 'unauthorized') forgetMe();
  if (r.ok) myPasses.setToken(me.token); // quest points may complete a pass
  render();
}

function renderMe() {
  $('me').hidden = !!me;
  $('me-handle').hidden = !me;
  if (me) setText($('me-handle'), `@${me.handle}`);
}

function renderCard(d) {
  const cur = d.current_cue;
  const sku = focusSku(d);
  const item = sku ? itemOf(d, sku) : null;
  const cue = cur?.cue;
  $('card').dataset.kind = cue?.type || 'none';
  $('card').dataset.revealed = item ? 'yes' : 'no';
  setText($('cue-kind'), cue ? KIND[cue.type] || cue.type : 'Coming up');
  setText($('cue-title'), cue?.title || item?.name || (d.state === 'scheduled' ? 'Something handmade is coming' : d.title));
  setText($('cue-body'), cue?.body || (!cue && !item ? 'Stay here: the reveal, the coupon and the Claim button all appear on this page.' : ''));
  setText($('item-name'), item && item.name !== cue?.title ? item.name : '');
  setText($('price'), item ? money(item.price_cents, d.currency) : '');
  const left = item ? leftOf(d, sku) : undefined;
  const state = left === undefined ? '' : scarcity(left, item.stock);
  setText($('card-stock'), left === undefined ? '' : left === 0 ? 'sold out' : state === 'scarce' ? `only ${left} left!` : `${left} of ${item.stock} left`);
  $('card-stock').dataset.scarcity = state;
  const image = (cue?.type === 'reveal' && cue.sku === sku && cue.image_url) || item?.image_url || null;
  const img = $('card-img');
  if (image) {
    if (img.getAttribute('src') !== image) img.src = image;
    img.hidden = false;
  } else {
    img.hidden = true;
    img.removeAttribute('src');
  }
  setText($('card-initial'), item ? item.name.trim().charAt(0).toUpperCase() : '?');
}

/**
 * Early access on `sku` now: `{mine: true, until}` when this viewer may claim before the
 * public (it is on the waitlist), `{mine: false, until}` when it waits for `until` (the
 * public opening, or the `opens_at_ms` of a refusal), null when early access is over.
 */
function earlyOf(d, sku, now) {
  if (!sku) return null;
  if (opensAt[sku] && opensAt[sku] <= now) {
    delete opensAt[sku];
    if (failures[sku] === 'not_open') delete failures[sku];
  }
  if (opensAt[sku]) return { mine: false, until: opensAt[sku] };
  if (claimWindow(d, sku, now) !== 'early') return null;
  return { mine: !!me && waitlist.onList, until: earlyAccessUntil(d, sku, now) };
}

function renderClaim(d) {
  const now = client.now();
  const sku = focusSku(d);
  const item = sku ? itemOf(d, sku) : null;
  const left = sku ? leftOf(d, sku) : undefined;
  const hold = sku ? holds[sku] : null;
  const early = hold ? null : earlyOf(d, sku, now);
  const open = claimWindow(d, sku, now) === 'open' || !!early?.mine;
  const btn = $('claim');
  let label;
  let enabled = false;
  if (!sku) label = d.state === 'closed' ? 'The drop is closed' : 'Opens at the reveal';
  else if (hold) label = 'It’s yours ✓';
  else if (left === 0) label = 'Sold out';
  else if (d.state === 'closed') label = 'The drop is closed';
  else if (d.state === 'paused') label = 'Paused — back soon';
  else if (early && !early.mine) label = `Opens in ${clock(early.until - now)}`;
  else if (!open) label = 'Not open yet';
  else if (!client.connected) label = 'Reconnecting…';
  else if (claiming && drawAt[sku]) label = 'In the draw…';
  else if (claiming) label = 'Claiming…';
  else if (!me) { label = 'Join to claim'; enabled = true; }
  else { label = `${early ? 'Claim early' : 'Claim'} · ${money(item.price_cents, d.currency)}`; enabled = true; }
  setText(btn, label);
  btn.disabled = !enabled;
  btn.dataset.state = hold ? 'held' : left === 0 ? 'sold-out' : enabled ? 'ready' : 'waiting';
  btn.dataset.early = early ? (early.mine ? 'mine' : 'wait') : 'no';

  // Which piece, when several are open. The row keeps its height either way.
  const revealed = revealedSkus(d).filter((s) => itemOf(d, s));
  const choice = $('sku-choice');
  const info = !item ? 'Claims open the moment a piece is revealed.'
    : `${item.name} · ${item.per_viewer_limit === 1 ? 'one per person' : `up to ${item.per_viewer_limit} per person`}`;
  const key = `${revealed.join('|')}#${sku}#${info}`;
  if (choice.dataset.key !== key) {
    choice.dataset.key = key;
    choice.setAttribute('role', revealed.length > 1 ? 'radiogroup' : 'note');
    choice.replaceChildren(...(revealed.length > 1 ? revealed.map((s) => el('button', {
      type: 'button', role: 'radio', class: 'chip', 'aria-checked': String(s === sku), tabindex: s === sku ? '0' : '-1',
      onclick: () => { chosenSku = s; render(); },
      onkeydown: (ev) => chooseByKey(ev, revealed, s),
    }, itemOf(d, s).name)) : [el('span', { class: 'claim-info' }, info)]));
  }

  const out = $('claim-result');
  // A `not_open` during early access is the countdown below, not a refusal to show.
  const reason = sku && !hold && !(early && failures[sku] === 'not_open') ? failures[sku] : null;
  const soldOut = left === 0 || d.state !== 'live';
  const entered = sku && !hold ? drawAt[sku] : null;
  const shown = hold ? `hold:${hold.code}` : entered ? `draw:${entered}` : reason ? `no:${reason}` : early && !soldOut ? `early:${early.mine}` : 'hint';
  out.dataset.early = shown.startsWith('early') ? (early.mine ? 'mine' : 'wait') : 'no';
  if (out.dataset.shown !== shown) showResult(out, shown, hold, reason, early, entered);
  const wait = out.querySelector('.early-time');
  if (wait && early) setText(wait, clock(early.until - now));
}

function showResult(out, shown, hold, reason, early, entered) {
  out.dataset.shown = shown;
  if (entered && shown.startsWith('draw')) {
    // Fair start: in the draw until its time; the result follows as for any claim.
    out.dataset.ok = 'draw';
    const at = new Date(entered).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    out.replaceChildren(
      el('span', { class: 'draw-entered' }, `Entered the draw — result at ${at}`),
      el('span', { class: 'early-note' }, 'Everyone who claimed in the first moments is in it, in random order: being fastest gives no edge.'));
  } else if (early && shown.startsWith('early')) {
    delete out.dataset.ok;
    const time = el('strong', { class: 'early-time' }, '');
    out.replaceChildren(...(early.mine ? [
      el('span', { class: 'early-tag' }, 'Early access: claim now'),
      el('span', { class: 'early-note' }, 'You’re on the waitlist, so you go first. Opens to everyone in ', time, '.'),
    ] : [
      el('span', { class: 'reason', 'data-reason': 'early_access' }, 'Opens to everyone in ', time),
      el('span', { class: 'early-note' }, 'Viewers on the waitlist claim first; the Claim button wakes up then.'),
    ]));
  } else if (hold) {
    out.dataset.ok = 'yes';
    out.replaceChildren(
      el('span', { class: 'won' }, 'It’s yours! Your claim code:'),
      el('span', { class: 'code-row' },
        el('code', { class: 'claim-code' }, hold.code),
        el('button', { type: 'button', class: 'small-button', onclick: (ev) => copyText(hold.code, ev.currentTarget, ev.currentTarget.parentElement.querySelector('code')) }, 'Copy')),
      el('span', { class: 'hold-line' }, el('span', { class: 'hold-time' }, ''), ' ', confirmation.openButton(hold.sku)));
  } else if (reason) {
    out.dataset.ok = 'no';
    out.replaceChildren(el('span', { class: 'reason', 'data-reason': reason }, REASONS[reason] || reason));
  } else {
    delete out.dataset.ok;
    out.replaceChildren(el('span', { class: 'hint' }, 'One tap when the piece appears. First come, first served.'));
  }
}

function chooseByKey(ev, skus, current) {
  const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[ev.key];
  if (!step) return;
  ev.preventDefault();
  chosenSku = skus[(skus.indexOf(current) + step + skus.length) % skus.length];
  render();
  $('sku-choice').querySelector('[aria-checked="true"]')?.focus();
}

function currentCoupon(d) {
  const live = activeCoupons(d, client.now());
  return live[live.length - 1] || null;
}

function renderCoupon(d) {
  const c = currentCoupon(d);
  const box = $('coupon');
  box.dataset.active = c ? 'yes' : 'no';
  const code = c ? (c.unique ? uniqueCodes[c.expires_ms] : c.code) : null;
  setText($('coupon-kind'), c ? `Flash coupon · ${c.percent_off}% off` : 'Flash coupon');
  setText($('coupon-code'), c ? code || (c.title || `${c.percent_off}% off`) : 'None right now — they drop during the show');
  $('coupon-code').dataset.code = code ? 'yes' : 'no';
  $('coupon-copy').hidden = !code;
  $('coupon-get').hidden = !(c && c.unique && !code);
  $('coupon-get').disabled = !client.connected || !me;
}

/** "2d 04:12:09" beyond a day, else as `clock`. */
function longClock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const days = Math.floor(s / 86400);
  if (!days) return clock(ms);
  return `${days}d ${pad2(Math.floor((s % 86400) / 3600))}:${pad2(Math.floor((s % 3600) / 60))}:${pad2(s % 60)}`;
}

/** Before the drop: a countdown to the announced start (`starts_at`), else "soon". */
function tickStart(d, now) {
  const starts = d.starts_at ? Date.parse(d.starts_at) : NaN;
  if (Number.isNaN(starts)) {
    setText($('next-label'), 'Starts when the maker goes live');
    setText($('next-time'), 'soon');
    $('next-bar').style.width = '0%';
    return;
  }
  const when = new Date(starts).toLocaleString([], { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
  if (starts > now) {
    setText($('next-label'), `Starts in · ${when}`);
    setText($('next-time'), longClock(starts - now));
    $('next-time').dataset.long = starts - now >= 86400000 ? 'yes' : 'no';
  } else {
    setText($('next-label'), `Starting any moment · announced for ${when}`);
    setText($('next-time'), 'soon');
  }
  const span = Math.max(1, starts - d.created_ms);
  $('next-bar').style.width = `${Math.max(0, Math.min(100, (100 * (now - d.created_ms)) / span))}%`;
}

/** Per-frame figures: countdowns and bars, all from server time. */
function tick() {
  const d = client.drop;
  if (!d) return;
  const now = client.now();
  if (d.state === 'live' && d.next_cue) {
    setText($('next-label'), NEXT[d.next_cue.type] || 'Next up in');
    setText($('next-time'), clock(d.next_cue.at_ms - now));
    const from = d.current_cue?.at_ms || d.started_ms || now;
    const span = Math.max(1, d.next_cue.at_ms - from);
    $('next-bar').style.width = `${Math.max(0, Math.min(100, (100 * (now - from)) / span))}%`;
  } else if (d.state === 'scheduled') {
    tickStart(d, now);
  } else {
    setText($('next-label'), {
      paused: 'Paused — back in a moment',
      closed: 'That’s a wrap — thanks for coming!', live: 'Live now',
    }[d.state] || '');
    setText($('next-time'), d.state === 'live' ? 'now' : d.state === 'closed' ? 'closed' : '—');
    $('next-bar').style.width = d.state === 'closed' ? '100%' : '0%';
  }
  const c = currentCoupon(d);
  if (($('coupon').dataset.active === 'yes') !== !!c) renderCoupon(d);
  if (c) {
    setText($('coupon-time'), `ends in ${clock(c.expires_ms - now)}`);
    const fired = d.fired.find((f) => f.cue.type === 'flash_coupon' && f.at_ms + (f.cue.ttl_s || 0) * 1000 === c.expires_ms);
    const ttl = fired ? fired.cue.ttl_s * 1000 : c.expires_ms - now;
    $('coupon-bar').style.width = `${Math.max(0, Math.min(100, (100 * (c.expires_ms - now)) / ttl))}%`;
  } else {
    setText($('coupon-time'), '');
    $('coupon-bar').style.width = '0%';
  }
  renderClaim(d); // early-access countdowns, and the Claim button when they end
  renderQuests(d); // quest countdowns, and a quest leaving when its window ends
  confirmation.tick();
  const sku = focusSku(d);
  const hold = sku && holds[sku];
  const holdTime = $('claim-result').querySelector('.hold-time');
  if (hold && holdTime) {
    const rest = hold.until - now;
    setText(holdTime, rest > 0 ? `Held for you for ${clock(rest)} — use the code at checkout.` : 'Your hold has expired.');
    holdTime.dataset.expired = rest > 0 ? 'no' : 'yes';
  }
  const conn = $('conn');
  if (client.connected) setText(conn, '');
  else if (client.retryAt) setText(conn, `reconnecting${client.retryAt > Date.now() + 1500 ? ` in ${Math.ceil((client.retryAt - Date.now()) / 1000)} s` : '…'}`);
  else setText(conn, 'connecting…');
}

async function claim() {
  if (!me) {
    openJoin();
    return;
  }
  const d = client.drop;
  const sku = d && focusSku(d);
  if (!sku || claiming) return;
  claiming = true;
  render();
  const r = await client.claim(sku);
  claiming = false;
  delete drawAt[sku];
  if (r.ok) {
    holds[r.sku || sku] = { code: r.code, sku: r.sku || sku, until: r.hold_until_ms };
    localStorage.setItem(HOLDS_KEY, JSON.stringify(holds));
    confirmation.add(r, client.drop);
    delete failures[sku];
  } else {
    failures[sku] = r.reason;
    if (r.reason === 'not_open' && r.opens_at_ms) {
      // Early access, and the hub does not count this viewer in: wait for the public.
      opensAt[sku] = r.opens_at_ms;
      if (waitlist.onList) waitlist.check();
    }
    if (r.reason === 'unauthorized') forgetMe();
    // The hub just said none are left: show it now rather than at the next stock broadcast.
    const row = r.reason === 'sold_out' && client.drop?.stock.find((x) => x.sku === sku);
    if (row) row.left = 0;
  }
  render();
}

/** The handle dialog; `why` = 'waitlist' when joining the waitlist waits for it. */
function openJoin(why = 'claim') {
  setText($('join-h'), why === 'waitlist' ? 'Join the waitlist' : why === 'chat' ? 'Join the chat' : 'Join the drop');
  setText($('join-why'), why === 'waitlist' ? 'First pick a handle: the maker sees it on the list, and it is all you need to claim.'
    : 'Pick a handle for the leaderboard. It is all you need to claim.');
  $('join-error').textContent = '';
  if (!$('join').open) $('join').showModal();
  $('handle').focus();
}

function forgetMe(ask = true) {
  me = null;
  client.token = null;
  waitlist.setToken(null);
  myPasses.setToken(null);
  localStorage.removeItem(VIEWER_KEY);
  if (ask) openJoin();
}

async function join(ev) {
  ev.preventDefault();
  const handle = $('handle').value.trim();
  if (!handle) {
    $('join-error').textContent = 'Type a handle (1–32 characters).';
    return;
  }
  $('join-submit').disabled = true;
  let resp;
  let body = {};
  try {
    resp = await fetch('/api/v1/viewers', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle }),
    });
    body = await resp.json().catch(() => ({}));
  } catch {
    resp = null;
  } finally {
    $('join-submit').disabled = false;
  }
  if (!resp || !resp.ok) {
    const wait = resp?.headers.get('retry-after');
    $('join-error').textContent = body?.error?.message || (wait ? `Too many joins; try again in ${wait} s.` : 'Could not join; try again.');
    return;
  }
  me = { viewer_id: body.viewer_id, token: body.token, handle: body.handle || handle };
  localStorage.setItem(VIEWER_KEY, JSON.stringify(me));
  const then = afterMint;
  afterMint = null;
  waitlist.setToken(me.token, !then); // a fresh viewer is on no list; `then` may join it
  $('join').close();
  client.setToken(me.token);
  render();
  then?.();
}

$('claim').addEventListener('click', claim);
$('me').addEventListener('click', openJoin);
$('coupon-copy').addEventListener('click', (ev) => copyText($('coupon-code').textContent, ev.currentTarget, $('coupon-code')));
$('coupon-get').addEventListener('click', async () => {
  const d = client.drop;
  const c = d && currentCoupon(d);
  if (!c) return;
  $('coupon-get').disabled = true;
  const r = await client.coupon();
  if (r.ok) uniqueCodes[c.expires_ms] = r.code;
  else setText($('coupon-code'), REASONS[r.reason] || r.reason);
  if (r.ok) render();
  else $('coupon-get').disabled = false;
});
$('join-form').addEventListener('submit', join);
$('join-skip').addEventListener('click', () => $('join').close());
$('join').addEventListener('close', () => { afterMint = null; });
client.addEventListener('change', render);
client.addEventListener('drawentered', (ev) => {
  drawAt[ev.detail.sku] = ev.detail.draw_at_ms;
  render();
});
// A keyword quest earned (or missed: `full`) by one of this viewer's chat messages.
client.addEventListener('quest', (ev) => {
  const m = ev.detail;
  if (!m.quest) return;
  questResults[m.quest] = m.ok ? { ok: true, points: m.points || 0 } : { ok: false, reason: m.reason };
  if (m.ok && me) myPasses.setToken(me.token); // quest points may complete a pass
  render();
});
client.addEventListener('status', (ev) => {
  document.body.dataset.connected = ev.detail.connected ? 'yes' : 'no';
  if (ev.detail.connected && client.token && !ev.detail.viewerId) forgetMe(); // the hub refused the token
  if (ev.detail.connected && ev.detail.viewerId && myPasses.token !== client.token) myPasses.setToken(client.token);
  render();
  tick();
});
setInterval(tick, 250);
client.start();
renderMe();
if (!me) openJoin();
