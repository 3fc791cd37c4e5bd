// The control panel's "Webhooks" view (`#webhooks`): the maker's endpoints with their
// status, a form to add one (its signing secret shown once), enable/disable, rotate the
// secret, delete; and for the chosen endpoint its recent deliveries, failures marked, with
// Retry on dead letters and "Replay since…". Reads every ~5 s while the view is shown.
// Speaks the admin routes of docs/api.md ("Webhooks").
import { $, el, pad2, setText } from './views.js';
import { showFieldError } from './panel-form.js';

const REFRESH_MS = 5000;
const SHOW_DELIVERIES = 50;
export const EVENTS = [
  'waitlist.joined', 'waitlist.updated', 'viewer.attended', 'drop.scheduled', 'drop.live', 'drop.closed',
  'claim.granted', 'claim.redeemed', 'claim.expired', 'coupon.issued', 'viewer.erased', 'quest.awarded',
  'followup.confirmation', 'coupon.redeemed', 'nurture.offer', 'nurture.skipped', 'endpoint.disabled',
];

let api = null;          // the panel's admin fetch: (method, path, body) → {ok, status, data}
let shown = false;       // the view is open
let endpoints = [];
let selected = null;     // the endpoint whose deliveries show
let asked = 0;           // bumps per read, so a stale answer is dropped
const armed = new Map(); // endpoint id → timer of a first click on Delete

const errorText = (r) => r.data?.error?.message || (r.status ? `HTTP ${r.status}` : 'The server does not answer.');
const path = (id, rest = '') => `/webhooks/${encodeURIComponent(id)}${rest}`;

/** "14:03:07" today, "9 Dec 14:03" on another day. */
export function when(ms) {
  const d = new Date(ms);
  const time = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  if (d.toDateString() === new Date().toDateString()) return `${time}:${pad2(d.getSeconds())}`;
  return `${d.toLocaleDateString([], { day: 'numeric', month: 'short' })} ${time}`;
}

/** The value of a datetime-local input for `ms`, in local time. */
function localInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** Wires the view; call once with the panel's `api`. */
export function setupWebhooks(apiFn) {
  api = apiFn;
  $('wh-event-list').replaceChildren(...EVENTS.map((name) => el('label', { class: 'wh-event' },
    el('input', { type: 'checkbox', name: 'events', value: name }), el('code', {}, name))));
  const form = $('wh-form');
  const pick = () => { form.dataset.which = form.which.value; };
  for (const r of form.which) r.addEventListener('change', pick);
  $('wh-event-list').addEventListener('change', () => {
    if (form.which.value !== 'some') form.which.value = 'some';
    pick();
  });
  pick();
  form.addEventListener('submit', add);
  $('wh-secret-done').addEventListener('click', hideSecret);
  $('wh-del-state').addEventListener('change', () => refresh());
  $('wh-replay').addEventListener('submit', replay);
  setInterval(() => { if (shown && !document.hidden && !$('webhooks').closest('[hidden]')) refresh(); }, REFRESH_MS);
}

/** Shows (true) or hides the view; the panel's router calls it on every hash change. */
export function showWebhooks(on) {
  $('webhooks').hidden = !on;
  if (on) $('nav-webhooks').setAttribute('aria-current', 'page');
  else $('nav-webhooks').removeAttribute('aria-current');
  if (!on) {
    if (shown) {
      hideSecret(); // a secret never outlives the view it was shown in
      document.title = 'dropwire · control panel';
    }
    shown = false;
    return;
  }
  shown = true;
  document.title = 'Webhooks · dropwire panel';
  if (!$('wh-replay-since').value) $('wh-replay-since').value = localInput(Date.now() - 3600 * 1000);
  refresh();
}

/** Reads the endpoints and, for the chosen one, its deliveries. */
export async function refresh() {
  if (!api) return;
  const mine = ++asked;
  const state = $('wh-del-state').value;
  const [list, del] = await Promise.all([api('GET', '/webhooks'),
    selected ? api('GET', path(selected, `/deliveries?limit=${SHOW_DELIVERIES}${state ? `&state=${state}` : ''}`)) : null]);
  if (mine !== asked || !shown) return;
  if (!list.ok) {
    setText($('wh-error'), list.data?.error?.code === 'ledger_off'
      ? 'Webhooks need the funnel ledger, and this hub runs without one (--ledger off).' : errorText(list));
    return;
  }
  setText($('wh-error'), '');
  endpoints = list.data.endpoints;
  if (selected && !endpoints.some((e) => e.id === selected)) selected = null;
  setText($('wh-updated'), `updated ${when(Date.now())}`);
  renderEndpoints();
  if (del && selected) {
    if (del.ok) {
      setText($('wh-del-error'), '');
      renderDeliveries(del.data.deliveries);
    } else setText($('wh-del-error'), errorText(del));
  }
  renderSelection();
}

function statusOf(e) {
  if (!e.enabled) return { state: 'disabled', label: 'disabled', detail: `${e.disabled_ms ? `since ${when(e.disabled_ms)}` : ''}${e.disabled_reason ? ` — ${e.disabled_reason}` : ''}` };
  if (e.failing_since_ms) return { state: 'failing', label: 'failing', detail: `since ${when(e.failing_since_ms)}` };
  return { state: 'enabled', label: 'enabled', detail: '' };
}

function renderEndpoints() {
  const tbody = $('wh-endpoints').querySelector('tbody');
  const key = JSON.stringify([endpoints, selected, [...armed.keys()]]);
  if (tbody.dataset.key === key) return;
  tbody.dataset.key = key;
  if (!endpoints.length) {
    tbody.replaceChildren(el('tr', {}, el('td', { colspan: '5', class: 'none' }, 'No endpoints yet: add your CRM’s or automation’s URL above.')));
    return;
  }
  tbody.replaceChildren(...endpoints.map((e) => {
    const s = statusOf(e);
    const all = e.events.includes('*');
    return el('tr', { 'data-id': e.id, 'data-state': s.state, class: e.id === selected ? 'selected' : null },
      el('td', {}, el('div', { class: 'wh-status' }, el('span', { class: 'pill small', 'data-state': s.state }, s.label),
        s.detail ? el('span', { class: 'wh-status-detail' }, s.detail) : null)),
      el('td', {}, el('div', { class: 'wh-endpoint' }, el('code', { class: 'wh-url', title: e.url }, e.url),
        e.description ? el('span', { class: 'wh-desc' }, e.description) : null)),
      el('td', { class: 'wh-ev' }, all ? el('span', { class: 'any' }, 'all events') : e.events.join(', ')),
      el('td', { class: 'wh-added', title: new Date(e.created_ms).toLocaleString() }, when(e.created_ms)),
      el('td', { class: 'wh-actions' },
        el('button', { type: 'button', class: 'small', 'data-action': 'deliveries', 'aria-pressed': String(e.id === selected), onclick: () => select(e.id) }, 'Deliveries'),
        el('button', { type: 'button', class: 'small', 'data-action': 'toggle', onclick: () => toggle(e) }, e.enabled ? 'Disable' : 'Enable'),
        el('button', { type: 'button', class: 'small', 'data-action': 'rotate', onclick: () => rotate(e) }, 'Rotate secret'),
        el('button', { type: 'button', class: 'small danger', 'data-action': 'delete', onclick: () => remove(e) },
          armed.has(e.id) ? 'Click again to delete' : 'Delete')));
  }));
}

function renderSelection() {
  const e = endpoints.find((x) => x.id === selected);
  $('wh-deliveries').hidden = !e;
  if (e) setText($('wh-del-url'), e.url);
}

/** True when a delivery failed: a dead letter, or one still trying after a failed try. */
const failed = (d) => d.state === 'dead' || (d.state === 'pending' && d.attempts > 0);

function lastTry(d) {
  return d.tries.reduce((a, t) => (!a || t.at_ms >= a.at_ms ? t : a), null);
}

function renderDeliveries(list) {
  const tbody = $('wh-del-table').querySelector('tbody');
  const key = JSON.stringify([selected, list]);
  if (tbody.dataset.key === key) return;
  tbody.dataset.key = key;
  if (!list.length) {
    const state = $('wh-del-state').value;
    tbody.replaceChildren(el('tr', {}, el('td', { colspan: '7', class: 'none' },
      state ? `No ${state === 'dead' ? 'dead letters' : `${state} deliveries`}.` : 'Nothing sent yet: deliveries show up here as events happen.')));
    return;
  }
  tbody.replaceChildren(...list.map((d) => {
    const t = lastTry(d);
    const answer = !t ? (d.state === 'pending' ? `first try ${d.next_ms > Date.now() ? `at ${when(d.next_ms)}` : 'now'}` : '—')
      : t.status ? `HTTP ${t.status}${t.error && !t.error.includes(String(t.status)) ? ` · ${t.error}` : ''}` : t.error || '—';
    const next = d.state === 'pending' && d.attempts > 0 ? ` · next ${when(d.next_ms)}` : '';
    return el('tr', { 'data-msg': d.msg_id, 'data-state': d.state, 'data-event': d.event, class: failed(d) ? 'failed' : null },
      el('td', { class: 'wh-time', title: `created ${new Date(d.created_ms).toLocaleString()}${d.done_ms ? `, done ${new Date(d.done_ms).toLocaleString()}` : ''}` }, when(d.created_ms)),
      el('td', {}, el('code', {}, d.event)),
      el('td', {}, el('span', { class: 'd-state', 'data-state': d.state }, d.state === 'dead' ? 'dead letter' : d.state)),
      el('td', { class: 'num' }, `${d.attempts}${next}`),
      el('td', { class: 'wh-answer', title: answer }, answer),
      el('td', { class: 'num' }, t ? `${t.latency_ms} ms` : '—'),
      el('td', { class: 'wh-actions' }, d.state === 'dead'
        ? el('button', { type: 'button', class: 'small', 'data-action': 'retry', onclick: (ev) => retry(d, ev.currentTarget) }, 'Retry') : null));
  }));
}

function select(id) {
  selected = selected === id ? null : id;
  $('wh-del-table').querySelector('tbody').replaceChildren();
  $('wh-del-table').querySelector('tbody').dataset.key = '';
  setText($('wh-replay-out'), '');
  setText($('wh-replay-error'), '');
  setText($('wh-del-error'), '');
  renderEndpoints();
  renderSelection();
  refresh();
}

function clearFormErrors() {
  for (const n of document.querySelectorAll('#wh-form .invalid')) n.classList.remove('invalid');
  for (const n of document.querySelectorAll('#wh-form .field-error, #wh-form-error')) n.textContent = '';
}

async function add(ev) {
  ev.preventDefault();
  const form = ev.target;
  clearFormErrors();
  const url = form.url.value.trim();
  const events = form.which.value === 'all' ? ['*']
    : [...form.querySelectorAll('#wh-event-list input:checked')].map((i) => i.value);
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  const r = await api('POST', '/webhooks', { url, events, description: form.description.value.trim() });
  button.disabled = false;
  if (!r.ok) {
    const err = r.data?.error || {};
    const message = err.message || errorText(r);
    const marked = showFieldError(form, err.field, message);
    setText($('wh-form-error'), `${marked ? 'Fix the marked field: ' : ''}${message}${err.code ? ` (${err.code})` : ''}`);
    return;
  }
  showSecret(r.data.secret, `For ${r.data.url} — put it in your receiver’s configuration.`);
  form.reset();
  form.dataset.which = 'all';
  selected = r.data.id;
  refresh();
}

function showSecret(secret, note) {
  $('wh-secret-value').value = secret;
  setText($('wh-secret-for'), note);
  $('wh-secret').hidden = false;
  $('wh-secret-value').focus();
  $('wh-secret-value').select();
}

function hideSecret() {
  $('wh-secret-value').value = '';
  setText($('wh-secret-for'), '');
  $('wh-secret').hidden = true;
}

async function act(method, rest, body, e) {
  setText($('wh-error'), '');
  const r = await api(method, path(e.id, rest), body);
  if (!r.ok) setText($('wh-error'), `${e.url}: ${errorText(r)}`);
  return r;
}

async function toggle(e) {
  await act('PATCH', '', { enabled: !e.enabled }, e);
  refresh();
}

async function rotate(e) {
  const r = await act('POST', '/rotate-secret', undefined, e);
  if (r.ok) showSecret(r.data.secret, `New secret for ${e.url}. The previous one still signs every message until ${new Date(r.data.previous_valid_until_ms).toLocaleString()}, so receivers can switch over.`);
}

async function remove(e) {
  if (!armed.has(e.id)) {
    // Deleting drops the endpoint's messages too: ask for a second click.
    armed.set(e.id, setTimeout(() => { armed.delete(e.id); renderEndpoints(); }, 4000));
    renderEndpoints();
    return;
  }
  clearTimeout(armed.get(e.id));
  armed.delete(e.id);
  const r = await act('DELETE', '', undefined, e);
  if (r.ok && selected === e.id) selected = null;
  refresh();
}

async function retry(d, button) {
  button.disabled = true;
  setText($('wh-del-error'), '');
  const r = await api('POST', path(selected, `/deliveries/${encodeURIComponent(d.msg_id)}/retry`));
  if (!r.ok) {
    setText($('wh-del-error'), `Retry of ${d.event}: ${errorText(r)}`);
    button.disabled = false;
  }
  refresh();
}

async function replay(ev) {
  ev.preventDefault();
  setText($('wh-replay-out'), '');
  setText($('wh-replay-error'), '');
  const since = new Date($('wh-replay-since').value).getTime();
  if (!selected || Number.isNaN(since)) {
    setText($('wh-replay-error'), 'Pick a date and time to replay from.');
    return;
  }
  const r = await api('POST', path(selected, '/replay'), { since });
  if (!r.ok) {
    setText($('wh-replay-error'), errorText(r));
    return;
  }
  const n = r.data.requeued;
  setText($('wh-replay-out'), n ? `${n} message${n === 1 ? '' : 's'} since ${when(since)} will go out again.` : `Nothing was sent to this endpoint since ${when(since)}.`);
  refresh();
}
