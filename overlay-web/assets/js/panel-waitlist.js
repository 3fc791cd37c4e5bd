// The control panel's "Waitlist" section for the open drop: how many joined, how many may
// be contacted, the segments (size × item → count), the entries, and a CSV download.
// Reads `GET /api/v1/drops/{id}/waitlist` (admin) — JSON, or CSV with `Accept: text/csv`.
import { $, el, setText } from './views.js';
import { downloadCsv as download } from './panel-csv.js';

const SHOW_ENTRIES = 200; // the rest is in the CSV
const ANY = '\u0000';     // the key of "not named" (null) in the segments matrix

let shownFor = null;      // the drop the section shows
let asked = 0;            // bumps per request, so a stale answer (another drop) is dropped

/** Loads and shows the waitlist of drop `id`; `api` is the panel's admin fetch. */
export async function loadWaitlist(api, id) {
  if (shownFor !== id) {
    shownFor = id;
    clear();
  }
  const mine = ++asked;
  const r = await api('GET', `/drops/${encodeURIComponent(id)}/waitlist`);
  if (mine !== asked || shownFor !== id) return;
  if (!r.ok) {
    setText($('wl-error'), r.data?.error?.message || `The waitlist did not load (HTTP ${r.status}).`);
    return;
  }
  setText($('wl-error'), '');
  render(r.data);
}

function clear() {
  setText($('wl-count'), '—');
  setText($('wl-consented'), '—');
  setText($('wl-error'), '');
  setText($('wl-csv-error'), '');
  $('wl-segments').replaceChildren();
  $('wl-entries').querySelector('tbody').replaceChildren();
  $('wl-segments').dataset.key = '';
  $('wl-entries').dataset.key = '';
}

function render(w) {
  setText($('wl-count'), String(w.count));
  setText($('wl-consented'), String(w.consented));
  setText($('wl-updated'), `updated ${new Date().toLocaleTimeString([], { hourCycle: 'h23' })}`);
  renderSegments(w.segments);
  renderEntries(w.entries, w.count);
}

/** The segments as a matrix: a row per size, a column per item ("any" when not named). */
function renderSegments(segments) {
  const table = $('wl-segments');
  const key = JSON.stringify(segments);
  if (table.dataset.key === key) return;
  table.dataset.key = key;
  if (!segments.length) {
    table.replaceChildren(el('tbody', {}, el('tr', {}, el('td', { class: 'none' }, 'Nobody has joined yet.'))));
    return;
  }
  const order = (values) => [...new Set(values)].sort((a, b) => (a === ANY) - (b === ANY) || a.localeCompare(b));
  const sizes = order(segments.map((s) => s.size ?? ANY));
  const items = order(segments.map((s) => s.item ?? ANY));
  const count = new Map(segments.map((s) => [`${s.size ?? ANY}|${s.item ?? ANY}`, s.count]));
  const label = (v, what) => (v === ANY ? el('span', { class: 'any' }, `any ${what}`) : v);
  table.replaceChildren(
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Size \\ item'),
      ...items.map((i) => el('th', { scope: 'col' }, label(i, 'item'))))),
    el('tbody', {}, ...sizes.map((size) => el('tr', {}, el('th', { scope: 'row' }, label(size, 'size')),
      ...items.map((item) => {
        const n = count.get(`${size}|${item}`) || 0;
        return el('td', { class: n ? 'n' : 'n zero', 'data-size': size === ANY ? '' : size, 'data-item': item === ANY ? '' : item }, String(n));
      })))));
}

function renderEntries(entries, total) {
  const table = $('wl-entries');
  const key = JSON.stringify(entries.map((e) => [e.viewer_id, e.updated_ms]));
  if (table.dataset.key === key) return;
  table.dataset.key = key;
  const rows = entries.slice(0, SHOW_ENTRIES).map((e) => el('tr', { 'data-viewer': e.viewer_id },
    el('td', { class: 'pos' }, String(e.position)),
    el('td', { class: 'handle' }, e.handle),
    el('td', {}, e.intent?.size || '—'),
    el('td', { class: 'items' }, (e.intent?.items || []).join(', ') || '—'),
    el('td', { class: e.consent?.marketing ? 'yes' : 'no' }, e.consent?.marketing ? 'yes' : 'no'),
    el('td', { class: 'contact' }, e.contact || '—')));
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: '6', class: 'none' }, 'No entries yet: viewers join from the viewer page before the drop.')));
  if (total > SHOW_ENTRIES) rows.push(el('tr', {}, el('td', { colspan: '6', class: 'none' }, `… and ${total - SHOW_ENTRIES} more in the CSV.`)));
  table.querySelector('tbody').replaceChildren(...rows);
}

/** Fetches the CSV with the admin token and saves it as a file. */
export function downloadCsv(token, id, button) {
  return download({
    path: `/drops/${encodeURIComponent(id)}/waitlist`,
    name: `waitlist-${id}.csv`,
    token,
    button,
    errorEl: $('wl-csv-error'),
  });
}
