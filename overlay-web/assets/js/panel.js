// The streamer's control panel: log in, create a drop, drive it, watch the figures.
import { el } from './client.js';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'dropwire.admin';
const EXAMPLE = {
  title: 'Speckled mugs, batch 12', kind: 'drop', currency: 'EUR', hold_s: 900,
  inventory: [{ sku: 'mug-speckled', name: 'Speckled mug', price_cents: 3400, stock: 40, per_viewer_limit: 1 }],
  script: { duration_s: 600, cues: [
    { at_s: 0, type: 'intro', title: 'Welcome to the studio' },
    { at_s: 90, type: 'reveal', sku: 'mug-speckled', title: 'Batch 12 is here' },
    { at_s: 300, type: 'flash_coupon', code: 'FLASH10', percent_off: 10, ttl_s: 120 },
    { at_s: 540, type: 'soft_close', title: 'Last call' },
    { at_s: 600, type: 'close' },
  ] },
};

let token = localStorage.getItem(TOKEN_KEY);
let current = null; // drop id
let drop = null;    // admin snapshot

async function api(method, path, body) {
  const resp = await fetch(`/api/v1${path}`, {
    method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await resp.json().catch(() => ({}));
  if (resp.status === 401 || resp.status === 403) logout();
  return { ok: resp.ok, status: resp.status, data };
}

function logout() {
  localStorage.removeItem(TOKEN_KEY);
  token = null;
  show();
}

function show() {
  $('login').hidden = !!token;
  $('main').hidden = !token;
  $('logout').hidden = !token;
  if (token) loadDrops();
}

async function login(ev) {
  ev.preventDefault();
  token = $('token').value.trim();
  const r = await api('GET', '/drops');
  if (!r.ok) {
    $('login-error').textContent = r.data?.error?.message || 'That token does not work.';
    token = null;
    return;
  }
  localStorage.setItem(TOKEN_KEY, token);
  show();
}

async function loadDrops() {
  const r = await api('GET', '/drops');
  if (!r.ok) return;
  $('drops').replaceChildren(...r.data.drops.slice().reverse().map((d) => el('li', {},
    el('button', { type: 'button', 'aria-current': String(d.id === current), onclick: () => openDrop(d.id) },
      el('span', {}, d.title), el('span', { class: 'muted' }, d.state)))));
}

function openCreate() {
  current = null;
  $('drop').hidden = true;
  $('create').hidden = false;
  if (!$('create-json').value) $('create-json').value = JSON.stringify({ inventory: EXAMPLE.inventory, script: EXAMPLE.script }, null, 2);
  if (!$('create-form').title.value) $('create-form').title.value = EXAMPLE.title;
}

function clearErrors(form) {
  for (const e of form.querySelectorAll('.invalid')) e.classList.remove('invalid');
  $('create-error').textContent = '';
}

async function create(ev) {
  ev.preventDefault();
  const form = ev.target;
  clearErrors(form);
  let body;
  try {
    body = JSON.parse(form.json.value || '{}');
  } catch (e) {
    form.json.classList.add('invalid');
    $('create-error').textContent = `The JSON does not parse: ${e.message}`;
    return;
  }
  if (form.title.value.trim()) body.title = form.title.value.trim();
  if (form.id.value.trim()) body.id = form.id.value.trim();
  if (form.hold_s.value) body.hold_s = Number(form.hold_s.value);
  const r = await api('POST', '/drops', body);
  if (!r.ok) {
    const err = r.data?.error || {};
    const field = err.field || '';
    const input = form.querySelector(`[data-field="${field.split(/[.[]/)[0]}"]`) || form.json;
    input.classList.add('invalid');
    $('create-error').textContent = `${field ? `${field}: ` : ''}${(err.message || `HTTP ${r.status}`).replace(`${field}: `, '')}`;
    return;
  }
  form.reset();
  $('create-json').value = '';
  await loadDrops();
  openDrop(r.data.id);
}

async function openDrop(id) {
  current = id;
  $('create').hidden = true;
  $('drop').hidden = false;
  await refresh();
  loadDrops();
}

async function refresh() {
  if (!current) return;
  const [d, s] = await Promise.all([api('GET', `/drops/${current}`), api('GET', `/drops/${current}/stats`)]);
  if (!d.ok) return;
  const stateChanged = drop?.id === d.data.id && drop.state !== d.data.state;
  drop = d.data;
  if (stateChanged) loadDrops();
  renderDrop();
  if (s.ok) renderStats(s.data);
}

function renderDrop() {
  const d = drop;
  $('drop-title').textContent = d.title;
  $('drop-state').textContent = d.state;
  $('drop-state').dataset.state = d.state;
  const elapsed = d.state === 'live' && d.started_ms ? d.elapsed_s + (Date.now() - d.server_ms) / 1000 : d.elapsed_s;
  $('drop-elapsed').textContent = `${Math.floor(Math.min(elapsed, d.duration_s))} s of ${d.duration_s} s`;
  for (const b of document.querySelectorAll('.controls button')) {
    const a = b.dataset.action;
    b.disabled = !({ start: d.state === 'scheduled', pause: d.state === 'live', resume: d.state === 'paused', close: d.state !== 'closed' })[a];
  }
  const fired = new Set(d.fired.filter((f) => f.index !== null).map((f) => f.index));
  const cues = d.script?.cues || [];
  const ticks = cues.map((c, i) => el('button', { type: 'button', class: `tick ${fired.has(i) ? 'fired' : ''}`,
    style: `left:${(100 * c.at_s) / d.duration_s}%`, title: `${c.at_s}s ${c.type}${c.title ? `: ${c.title}` : ''}`,
    'aria-label': `cue ${i}: ${c.type} at ${c.at_s} s` }));
  $('timeline').replaceChildren(...ticks, el('div', { class: 'playhead', id: 'playhead', style: `left:${(100 * Math.min(elapsed, d.duration_s)) / d.duration_s}%` }));
  $('cues').replaceChildren(...cues.map((c, i) => el('li', { class: fired.has(i) ? 'fired' : '' },
    el('span', {}, `${c.at_s}s`), el('strong', {}, c.type), el('span', {}, c.title || c.sku || c.code || ''),
    fired.has(i) ? el('span', { class: 'muted' }, 'fired')
      : el('button', { type: 'button', disabled: !['live', 'paused'].includes(d.state), onclick: () => control('fire', { cue: i }) }, 'Fire now'))));
  $('viewer-url').value = `${location.origin}/live/${d.id}`;
  $('obs-url').value = `${location.origin}/obs/${d.id}?key=${encodeURIComponent(d.obs_key)}`;
}

function renderStats(s) {
  $('f-now').textContent = s.viewers.now;
  $('f-peak').textContent = s.viewers.peak;
  $('f-held').textContent = s.claims.held;
  $('f-redeemed').textContent = s.claims.redeemed;
  $('f-expired').textContent = s.claims.expired;
  $('f-conv').textContent = `${Math.round(100 * s.conversion)}%`;
  $('f-stock').replaceChildren(...s.stock.map((x) => el('li', { 'data-sku': x.sku }, `${x.sku}: ${x.left} left`)));
}

async function control(action, body) {
  $('control-error').textContent = '';
  const r = await api('POST', `/drops/${current}/${action}`, body);
  if (!r.ok) $('control-error').textContent = r.data?.error?.message || `HTTP ${r.status}`;
  else drop = r.data;
  await refresh();
}

$('login-form').addEventListener('submit', login);
$('logout').addEventListener('click', logout);
$('new-drop').addEventListener('click', openCreate);
$('create-form').addEventListener('submit', create);
for (const b of document.querySelectorAll('.controls button')) b.addEventListener('click', () => control(b.dataset.action));
$('coupon-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = ev.target;
  control('fire', { cue: { type: 'flash_coupon', code: f.code.value.trim(), percent_off: Number(f.percent_off.value), ttl_s: Number(f.minutes.value) * 60, title: `${f.percent_off.value}% off` } });
});
for (const b of document.querySelectorAll('[data-copy]')) {
  b.addEventListener('click', async () => {
    const input = $(b.dataset.copy);
    try { await navigator.clipboard.writeText(input.value); } catch { input.select(); }
    b.textContent = 'Copied';
    setTimeout(() => { b.textContent = 'Copy'; }, 1500);
  });
}
setInterval(refresh, 1000);
show();
