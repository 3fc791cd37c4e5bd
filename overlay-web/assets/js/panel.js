// The streamer's control panel: log in with the admin token, create a drop (form or
// pasted JSON), drive its timeline, fire cues and coupons, watch the figures live.
// Speaks the admin HTTP API, and follows the open drop on its WebSocket as the maker
// (panel-live.js), so the timeline and the figures move without polling.
import { $, copyText, el, money, setText } from './views.js';
import { LiveDrop } from './panel-live.js';
import { setupForm, readForm, fillForm, clearErrors, showFieldError, drawTimeline, fmt, EXAMPLE } from './panel-form.js';
import { loadWaitlist, downloadCsv } from './panel-waitlist.js';
import { setupWebhooks, showWebhooks } from './panel-webhooks.js';
import { setupAnalytics, showAnalytics } from './panel-analytics.js';
import { setupRecipes, showRecipes, saveDropAsRecipe } from './panel-recipes.js';
import { setupChat, showChat, chatChanged } from './panel-chat.js';

const TOKEN_KEY = 'dropwire.admin';
const EVERY_MS = 1000;
const WAITLIST_EVERY = 10; // seconds between two reads of the waitlist

let token = localStorage.getItem(TOKEN_KEY);
let current = null;   // open drop id
let live = null;      // its LiveDrop: the admin snapshot, the socket, the figures
let shownState = null; // the state the drop list was last read for
let offsetMs = 0;     // server clock − local clock, from the HTTP answers
let tickCount = 0;
let closeArmed = null;

async function api(method, path, body) {
  const t0 = Date.now();
  let resp;
  try {
    resp = await fetch(`/api/v1${path}`, {
      method, cache: 'no-store',
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch {
    return { ok: false, status: 0, data: { error: { message: 'The server does not answer; is dropwire running?' } } };
  }
  const data = await resp.json().catch(() => ({}));
  if (resp.status === 401) logout('The admin token was refused; log in again.');
  if (data && typeof data.server_ms === 'number') offsetMs = data.server_ms - (t0 + Date.now()) / 2;
  return { ok: resp.ok, status: resp.status, data };
}

const serverNow = () => Date.now() + offsetMs;
const errorText = (r) => r.data?.error?.message || `HTTP ${r.status}`;

function logout(message = '') {
  localStorage.removeItem(TOKEN_KEY);
  token = null;
  watch(null);
  $('login-error').textContent = message;
  show();
}

function show() {
  $('login').hidden = !!token;
  $('main').hidden = !token;
  $('logout').hidden = !token;
  setText($('who'), token ? 'logged in' : '');
  if (!token) {
    $('token').focus();
    return;
  }
  loadDrops();
  route();
}

/**
 * `#drop=ID` opens a drop, `#new` the form, `#webhooks` the webhooks, `#analytics` (or
 * `#analytics=ID`, a drop's) the analytics, `#recipes` (`&use=ID`, `&edit=ID`) the recipe
 * library; the hash survives a reload.
 */
function route() {
  const h = new URLSearchParams(location.hash.slice(1));
  showWebhooks(h.has('webhooks'));
  showAnalytics(h.has('analytics'), h.get('analytics') || null);
  showRecipes(h.has('recipes'), h);
  if (h.has('drop')) openDrop(h.get('drop'));
  else if (h.has('new')) openCreate();
  else if (h.has('webhooks') || h.has('analytics') || h.has('recipes')) {
    watch(null);
    for (const id of ['create', 'drop', 'empty']) $(id).hidden = true;
    loadDrops();
  } else {
    watch(null);
    for (const id of ['create', 'drop']) $(id).hidden = true;
    $('empty').hidden = false;
  }
}

async function login(ev) {
  ev.preventDefault();
  token = $('token').value.trim();
  const r = await api('GET', '/drops');
  if (!r.ok) {
    token = null;
    $('login-error').textContent = r.status === 401 ? 'That token does not work.' : errorText(r);
    return;
  }
  localStorage.setItem(TOKEN_KEY, token);
  $('token').value = '';
  $('login-error').textContent = '';
  show();
}

async function loadDrops() {
  const r = await api('GET', '/drops');
  if (!r.ok) return;
  const drops = r.data.drops.slice().sort((a, b) => b.created_ms - a.created_ms);
  $('drops').replaceChildren(...(drops.length ? drops.map((d) => el('li', {},
    el('a', { href: `#drop=${encodeURIComponent(d.id)}`, 'aria-current': d.id === current ? 'page' : null },
      el('span', { class: 'drop-name' }, d.title),
      el('span', { class: 'drop-sub' }, el('span', { class: `pill small`, 'data-state': d.state }, d.state), d.id))))
    : [el('li', { class: 'none' }, 'No drops yet.')]));
}

function openCreate() {
  watch(null);
  $('drop').hidden = true;
  $('empty').hidden = true;
  $('create').hidden = false;
  if (!$('inv-rows').children.length) fillForm(EXAMPLE);
  if (!$('create-json').value) $('create-json').value = JSON.stringify(EXAMPLE, null, 2);
  loadDrops();
}

function selectTab(json) {
  $('tab-form').setAttribute('aria-selected', String(!json));
  $('tab-json').setAttribute('aria-selected', String(json));
  $('create-form').hidden = json;
  $('json-form').hidden = !json;
  clearErrors();
}

async function submitCreate(body, root) {
  clearErrors();
  const r = await api('POST', '/drops', body);
  if (!r.ok) {
    const err = r.data?.error || {};
    const marked = showFieldError(root, err.field, err.message || errorText(r));
    $('create-error').textContent = marked ? `Fix the marked field: ${err.message}` : err.message || errorText(r);
    if (root.id === 'json-form') {
      $('create-json').classList.add('invalid');
      $('json-error').textContent = err.message || errorText(r);
    }
    return;
  }
  location.hash = `drop=${encodeURIComponent(r.data.id)}`;
}

function createFromForm(ev) {
  ev.preventDefault();
  submitCreate(readForm(), $('create-form'));
}

function createFromJson(ev) {
  ev.preventDefault();
  clearErrors();
  let body;
  try {
    body = JSON.parse($('create-json').value);
  } catch (e) {
    $('create-json').classList.add('invalid');
    $('json-error').textContent = `The JSON does not parse: ${e.message}`;
    return;
  }
  submitCreate(body, $('json-form'));
}

/** Follows drop `id` live (null: none), or keeps following it. */
function watch(id) {
  if (current === id && (live || !id)) return;
  live?.stop();
  live = null;
  current = id;
  shownState = null;
  $('f-claims').replaceChildren();
  showChat(id);
  if (!id) return;
  live = new LiveDrop(id, {
    admin: token, api, serverNow,
    onChange: (kind) => {
      if (kind === 'snapshot' || kind === 'state' || kind === 'cue') renderDrop();
      chatChanged(kind);
    },
    onRefused: () => logout('The admin token was refused; log in again.'),
  }).start();
}

async function openDrop(id) {
  watch(id);
  $('create').hidden = true;
  $('empty').hidden = true;
  $('drop').hidden = false;
  $('control-error').textContent = '';
  loadWaitlist(api, id);
  await readDrop();
  loadDrops();
}

/** The admin snapshot of the open drop: its script, whole inventory and OBS key. */
async function readDrop() {
  const id = current;
  if (!id) return;
  const d = await api('GET', `/drops/${encodeURIComponent(id)}`);
  if (id !== current) return;
  if (!d.ok) {
    $('control-error').textContent = errorText(d);
    return;
  }
  live.spec = d.data;
  const rc = d.data.recipe;
  setText($('drop-recipe'), rc ? `from recipe ${rc.id} (v${rc.version})` : '');
  $('drop-to-recipe').hidden = !d.data.script;
  renderDrop();
  live.render();
}

function renderDrop() {
  const d = live?.drop();
  if (!d) return;
  if (shownState !== null && shownState !== d.state) loadDrops();
  shownState = d.state;
  document.title = `${d.title} · dropwire panel`;
  setText($('drop-title'), d.title);
  setText($('drop-state'), d.state);
  $('drop-state').dataset.state = d.state;
  const allowed = { start: d.state === 'scheduled', pause: d.state === 'live', resume: d.state === 'paused', close: d.state !== 'closed' };
  for (const b of document.querySelectorAll('.controls button')) b.disabled = !allowed[b.dataset.action];
  const fired = new Set(d.fired.filter((f) => f.index !== null && f.index !== undefined).map((f) => f.index));
  const cues = d.script?.cues || [];
  const key = JSON.stringify([d.state, [...fired], cues.length, d.fired.length]);
  if ($('cues').dataset.key !== key) {
    $('cues').dataset.key = key;
    const canFire = d.state === 'live' || d.state === 'paused';
    const rows = cues.map((c, i) => el('li', { class: `cue-item${fired.has(i) ? ' fired' : ''}`, 'data-index': i },
      el('span', { class: 'cue-at' }, fmt(c.at_s)),
      el('span', { class: `badge t-${c.type}` }, c.type.replace('_', ' ')),
      el('span', { class: 'cue-what' }, describe(c, d)),
      el('span', { class: 'cue-status', 'data-index': i }, ''),
      fired.has(i) ? el('span', { class: 'done-mark' }, 'fired ✓')
        : el('button', { type: 'button', class: 'fire', disabled: !canFire, onclick: () => control('fire', { cue: i }),
          'aria-label': `Fire cue ${i + 1} (${c.type}) now` }, 'Fire now')));
    const adhoc = d.fired.filter((f) => f.index === null || f.index === undefined).map((f) => el('li', { class: 'cue-item fired adhoc-cue' },
      el('span', { class: 'cue-at', title: new Date(f.at_ms).toLocaleString() }, new Date(f.at_ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })),
      el('span', { class: `badge t-${f.cue.type}` }, f.cue.type.replace('_', ' ')),
      el('span', { class: 'cue-what' }, `${describe(f.cue, d)} (ad-hoc)`), el('span', { class: 'cue-status' }), el('span', { class: 'done-mark' }, 'fired ✓')));
    $('cues').replaceChildren(...rows, ...adhoc);
  }
  for (const b of document.querySelectorAll('.fire')) b.disabled = !(d.state === 'live' || d.state === 'paused');
  const viewer = `${location.origin}/live/${encodeURIComponent(d.id)}`;
  const obs = `${location.origin}/obs/${encodeURIComponent(d.id)}?key=${encodeURIComponent(d.obs_key)}`;
  if ($('viewer-url').value !== viewer) $('viewer-url').value = viewer;
  if ($('obs-url').value !== obs) $('obs-url').value = obs;
  $('viewer-open').href = viewer;
  $('drop-analytics').href = `#analytics=${encodeURIComponent(d.id)}`;
  $('obs-open').href = obs;
  tick();
}

function describe(c, d) {
  const item = c.sku && d.inventory.find((i) => i.sku === c.sku);
  switch (c.type) {
    case 'reveal': return `${c.title || ''}${c.title && item ? ' — ' : ''}${item ? `${item.name}, ${money(item.price_cents, d.currency)}` : c.sku || ''}`;
    case 'flash_coupon': return `${c.unique ? `${c.limit || ''} personal codes` : c.code} · ${c.percent_off}% off · ${fmt(c.ttl_s || 0)}${c.title ? ` — ${c.title}` : ''}`;
    case 'quest': return `${c.title || 'Quest'}${c.points ? ` · ${c.points} pts` : ''}`;
    default: return c.title || c.body || '';
  }
}

/** The moving parts: playhead, elapsed time, countdowns to each cue. */
function tick() {
  const d = live?.drop();
  if (!d) return;
  const e = live.elapsed();
  setText($('drop-elapsed'), `${fmt(e)} / ${fmt(d.duration_s)}`);
  const fired = new Set(d.fired.filter((f) => f.index !== null && f.index !== undefined).map((f) => f.index));
  const tl = $('timeline');
  const key = JSON.stringify([[...fired], d.duration_s]);
  if (tl.dataset.key !== key) {
    tl.dataset.key = key;
    drawTimeline(tl, d.script?.cues || [], d.duration_s, { elapsed: e, fired });
  } else {
    const pct = `${(100 * e) / Math.max(1, d.duration_s)}%`;
    tl.querySelector('.playhead').style.left = pct;
    tl.querySelector('.done').style.width = pct;
  }
  for (const s of document.querySelectorAll('.cue-status[data-index]')) {
    const c = d.script.cues[Number(s.dataset.index)];
    setText(s, !fired.has(Number(s.dataset.index)) && d.state !== 'closed' && d.state !== 'scheduled' ? `in ${fmt(c.at_s - e)}` : '');
  }
}

async function control(action, body) {
  $('control-error').textContent = '';
  const buttons = document.querySelectorAll('.controls button, .fire');
  for (const b of buttons) b.disabled = true;
  const id = current;
  const r = await api('POST', `/drops/${encodeURIComponent(id)}/${action}`, body);
  if (!r.ok) $('control-error').textContent = errorText(r);
  // The answer is the admin snapshot; the socket brings the same change to every page.
  if (r.ok && live && id === current && r.data?.id === id) live.spec = r.data;
  renderDrop();
  return r;
}

async function fireCoupon(ev) {
  ev.preventDefault();
  const f = ev.target;
  for (const n of f.querySelectorAll('.field-error')) n.textContent = '';
  for (const n of f.querySelectorAll('.invalid')) n.classList.remove('invalid');
  $('coupon-error').textContent = '';
  const percent = Number(f.percent_off.value);
  const minutes = Number(f.minutes.value);
  const cue = { type: 'flash_coupon', percent_off: percent, ttl_s: Math.round(minutes * 60),
    title: `${percent}% off for ${minutes === 1 ? 'one minute' : `${minutes} minutes`}` };
  if (f.unique.checked) {
    cue.unique = true;
    cue.limit = Number(f.limit.value);
  } else {
    cue.code = f.code.value.trim();
  }
  const r = await control('fire', { cue });
  if (!r.ok) {
    const err = r.data?.error || {};
    $('control-error').textContent = '';
    if (!showFieldError(f, err.field, err.message || errorText(r))) $('coupon-error').textContent = errorText(r);
  }
}

function copyFrom(button) {
  const input = $(button.dataset.copy);
  copyText(input.value, button, input);
}

$('login-form').addEventListener('submit', login);
$('logout').addEventListener('click', () => logout());
$('new-drop').addEventListener('click', () => {
  if (location.hash === '#new') openCreate();
  else location.hash = 'new';
});
$('tab-form').addEventListener('click', () => selectTab(false));
$('tab-json').addEventListener('click', () => {
  $('create-json').value = JSON.stringify(readForm(), null, 2);
  selectTab(true);
});
$('json-to-form').addEventListener('click', () => {
  try {
    fillForm(JSON.parse($('create-json').value));
    selectTab(false);
  } catch (e) {
    $('json-error').textContent = `The JSON does not parse: ${e.message}`;
  }
});
$('create-form').addEventListener('submit', createFromForm);
$('json-form').addEventListener('submit', createFromJson);
for (const b of document.querySelectorAll('.controls button')) {
  b.addEventListener('click', () => {
    if (b.dataset.action !== 'close') return control(b.dataset.action);
    // Closing ends the drop for good: ask for a second click.
    if (closeArmed) {
      clearTimeout(closeArmed);
      closeArmed = null;
      b.textContent = '■ Close';
      return control('close');
    }
    b.textContent = 'Click again to close for good';
    closeArmed = setTimeout(() => { closeArmed = null; b.textContent = '■ Close'; }, 4000);
    return null;
  });
}
$('coupon-form').addEventListener('submit', fireCoupon);
$('drop-to-recipe').addEventListener('click', async () => {
  if (!current) return;
  const r = await saveDropAsRecipe(current);
  $('control-error').textContent = r.ok ? '' : errorText(r);
});
$('wl-csv').addEventListener('click', (ev) => current && downloadCsv(token, current, ev.currentTarget));
$('coupon-form').unique.addEventListener('change', (ev) => { $('coupon-form').dataset.unique = ev.target.checked ? 'yes' : 'no'; });
for (const b of document.querySelectorAll('[data-copy]')) b.addEventListener('click', () => copyFrom(b));
addEventListener('hashchange', route);
setupForm();
setupWebhooks(api);
setupRecipes(api);
setupAnalytics(api, () => token);
setupChat(api);
setInterval(() => {
  tickCount += 1;
  if (token && current) live?.tick();
  if (token && current && !document.hidden && tickCount % WAITLIST_EVERY === 0) loadWaitlist(api, current);
  if (token && tickCount % 5 === 0) loadDrops();
}, EVERY_MS);
setInterval(tick, 250);
show();
