// The control panel's "Analytics" view (`#analytics`, `#analytics=DROP`): the funnel KPIs of
// the ledger (docs/metrics.md). For a chosen drop its funnel as bars (viewers → waitlist →
// claims → redemptions) and its KPI table; the 90-day repeat curves of that drop and of the
// drops compared; drops side by side (KPIs, differences vs the first, grouped bars of the
// main ratios); LTV by event type (30/90/365 days); a summary by kind, recipe or month
// between two dates; and a CSV of each. Charts are uPlot, vendored in assets/vendor/uplot/
// and loaded the first time the view opens. Speaks the admin routes of docs/api.md
// ("Analytics") and reads the drops' names, kinds and currencies from the ledger's
// `drop.scheduled` facts.
import { $, el, pad2, setText } from './views.js';
import { downloadCsv, saveBlob } from './panel-csv.js';
import { INK, axis, barChart, charts, draw, loadUplot, size, undraw } from './panel-charts.js';
import { showFieldError } from './panel-form.js';

const DEFAULT_CURRENCY = 'EUR';
const MAX_COMPARE = 20;  // what the API takes
const DEFAULT_COMPARE = 3;
const DAY_MS = 86_400_000;
/** Series colours (drops), in order. */
export const COLORS = ['#ff7a45', '#6aa8ff', '#4fc98a', '#f5b942', '#c792ea', '#ff5f57', '#5fd3d3', '#d8d8d8'];
/** The funnel's steps, each with its bar colour. */
const STEPS = [
  { key: 'viewers', label: 'Viewers', color: '#6aa8ff' },
  { key: 'waitlist', label: 'Waitlist', color: '#c792ea' },
  { key: 'claims', label: 'Claims', color: '#ff7a45' },
  { key: 'redemptions', label: 'Redemptions', short: 'Redeemed', color: '#4fc98a' },
];
const LTV_WINDOWS = [{ days: 30, color: '#6aa8ff' }, { days: 90, color: '#ff7a45' }, { days: 365, color: '#4fc98a' }];
/** The ratios drawn side by side when comparing (short labels for the axis). */
const MAIN_RATIOS = [
  ['intent_to_buy', 'Intent'], ['claim_rate', 'Claim rate'], ['conversion_48h', '48 h conv.'],
  ['re_engagement', 'Re-engaged'], ['repeat_90d', 'Repeat 90 d'],
];
/** The same on two lines, for narrow charts. */
const MAIN_RATIOS_NARROW = ['Intent', 'Claim\nrate', '48 h\nconv.', 'Re-\nengaged', 'Repeat\n90 d'];
/** The KPI table of one drop: key, label, what it is, and its base ([numerator, denominator, of what]). */
const KPIS = [
  ['intent_to_buy', 'Intent-to-buy', 'waitlisters who claimed', (k) => [k.waitlist_claimers, k.waitlist, 'waitlisters']],
  ['claim_rate', 'Claim rate', 'viewers who claimed', (k) => [k.claimers, k.unique_viewers, 'viewers']],
  ['conversion_48h', 'Conversion within 48 h', 'claims redeemed within 48 h of the claim', (k) => [k.redeemed_48h, k.claims, 'claims']],
  ['coupon_uses', 'Coupon uses', 'follow-up coupons redeemed', null],
  ['re_engagement', 'Re-engagement', 'viewers back from an earlier drop', (k) => [k.re_engaged, k.unique_viewers, 'viewers']],
  ['revenue_cents', 'Revenue', 'redeemed claims', (k) => `${k.redeemed} order${k.redeemed === 1 ? '' : 's'}`],
  ['repeat_90d', 'Repeat within 90 days', 'buyers who bought again', (k) => [k.repeat_buyers_90d, k.buyers, 'buyers']],
];
/** The compare table's rows; `diff` rows carry the API's difference vs the first drop. */
const COMPARE_ROWS = [
  ['unique_viewers', 'Unique viewers', 'count'], ['waitlist', 'Waitlist', 'count'], ['claims', 'Claims', 'count'],
  ['redeemed', 'Redemptions', 'count'], ['intent_to_buy', 'Intent-to-buy', 'ratio', true],
  ['claim_rate', 'Claim rate', 'ratio', true], ['conversion_48h', 'Conversion within 48 h', 'ratio', true],
  ['coupon_uses', 'Coupon uses', 'count'], ['re_engagement', 'Re-engagement', 'ratio', true],
  ['revenue_cents', 'Revenue', 'money', true], ['repeat_90d', 'Repeat within 90 days', 'ratio', true],
];
/** The summary table's columns. */
const SUMMARY_COLS = [
  ['drops', 'Drops', 'count'], ['unique_viewers', 'Viewers', 'count'], ['waitlist', 'Waitlist', 'count'],
  ['claims', 'Claims', 'count'], ['redeemed', 'Redeemed', 'count'], ['intent_to_buy', 'Intent', 'ratio'],
  ['claim_rate', 'Claim rate', 'ratio'], ['conversion_48h', '48 h conv.', 'ratio'], ['coupon_uses', 'Coupons', 'count'],
  ['re_engagement', 'Re-engaged', 'ratio'], ['revenue_cents', 'Revenue', 'money'], ['repeat_90d', 'Repeat 90 d', 'ratio'],
];

let api = null;            // the panel's admin fetch: (method, path, body) → {ok, status, data}
let token = () => '';      // the admin token, for the CSV downloads
let shown = false;
let drops = new Map();     // id → {id, title, kind, recipe, currency, startMs}
let picked = null;         // the drop of the funnel and KPI table
let compared = [];         // the drops compared, the base first
let comparedSet = false;   // the maker changed the comparison (else it follows the newest drops)
let summary = null;        // the last summary answer
const details = new Map(); // id → GET /analytics/drops/{id} answer (for the curves), per load
const asked = { drops: 0, drop: 0, compare: 0, curves: 0, summary: 0 };

// ---------------------------------------------------------------- formatting

const errorText = (r) => r.data?.error?.message || (r.status ? `HTTP ${r.status}` : 'The server does not answer.');
const ledgerOff = (r) => r.data?.error?.code === 'ledger_off';
const LEDGER_OFF = 'Analytics need the funnel ledger, and this hub runs without one (--ledger off).';
const nf = (opts) => new Intl.NumberFormat(undefined, opts);

/** A share as a percentage with one decimal; "—" when there is none. */
export function pct(r) {
  return r === null || r === undefined ? '—' : nf({ style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(r);
}

/** A difference of two shares, in percentage points. */
export function pp(d) {
  if (d === null || d === undefined) return '—';
  return `${nf({ minimumFractionDigits: 1, maximumFractionDigits: 1, signDisplay: 'exceptZero' }).format(d * 100)} pp`;
}

/** Cents in `currency` ("mixed" when a group spans currencies: the amount without a symbol). */
export function money(cents, currency = DEFAULT_CURRENCY, { sign = false, whole = false } = {}) {
  if (cents === null || cents === undefined) return '—';
  const digits = whole ? { minimumFractionDigits: 0, maximumFractionDigits: 0 } : {};
  const signed = sign ? { signDisplay: 'exceptZero' } : {};
  if (currency === 'mixed') return `${nf({ minimumFractionDigits: 2, maximumFractionDigits: 2, ...signed }).format(cents / 100)} (mixed currencies)`;
  try {
    return nf({ style: 'currency', currency, ...digits, ...signed }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(whole ? 0 : 2)} ${currency}`;
  }
}

/** A label that never breaks at its hyphens (a word joiner after each). */
const joined = (label) => label.replace(/-/g, '-\u2060');
const count = (n) => (n === null || n === undefined ? '—' : nf({}).format(n));
const dateOf = (ms) => (ms ? new Date(ms).toLocaleDateString([], { day: 'numeric', month: 'short', year: 'numeric' }) : 'no date');
const utcMonth = (ms) => { const d = new Date(ms); return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}`; };
const titleOf = (id) => drops.get(id)?.title || id;
const currencyOf = (id) => drops.get(id)?.currency || DEFAULT_CURRENCY;

function value(kind, v, currency) {
  if (kind === 'ratio') return pct(v);
  if (kind === 'money') return money(v, currency);
  return count(v);
}

// ---------------------------------------------------------------- wiring

/** Wires the view; call once with the panel's `api` and a function giving the admin token. */
export function setupAnalytics(apiFn, tokenFn) {
  api = apiFn;
  token = tokenFn;
  $('an-drop').addEventListener('change', (ev) => pick(ev.target.value));
  $('an-compare-add').addEventListener('change', (ev) => {
    const id = ev.target.value;
    ev.target.value = '';
    if (!id || compared.includes(id) || compared.length >= MAX_COMPARE) return;
    compared.push(id);
    comparedSet = true;
    renderCompareChips();
    loadCompare();
  });
  $('an-refresh').addEventListener('click', () => load(true));
  const form = $('an-summary-form');
  form.addEventListener('submit', (ev) => { ev.preventDefault(); loadSummary(); });
  for (const n of form.querySelectorAll('select, input')) n.addEventListener('change', () => loadSummary());
  $('an-summary-clear').addEventListener('click', () => {
    $('an-from').value = '';
    $('an-to').value = '';
    loadSummary();
  });
  $('an-drop-csv').addEventListener('click', (ev) => picked
    && download(`/analytics/drops/${encodeURIComponent(picked)}`, `analytics-${picked}.csv`, ev.currentTarget, 'an-drop-error'));
  $('an-compare-csv').addEventListener('click', (ev) => compared.length
    && download(`/analytics/compare?drops=${compared.map(encodeURIComponent).join(',')}`, 'analytics-compare.csv', ev.currentTarget, 'an-compare-error'));
  $('an-summary-csv').addEventListener('click', (ev) => {
    const q = summaryQuery();
    if (q) download(`/analytics/summary?${q}`, 'analytics-summary.csv', ev.currentTarget, 'an-summary-error');
  });
  $('an-ltv-csv').addEventListener('click', () => summary && saveBlob(new Blob([ltvCsv(summary.ltv_by_kind)], { type: 'text/csv' }), 'ltv-by-kind.csv'));
  // Charts follow their box's width (the panel's column, a phone's screen).
  const resized = new ResizeObserver((entries) => {
    for (const e of entries) {
      const u = charts.get(e.target.dataset.chart);
      const { width, height } = size(e.target);
      if (u && width > 0 && (Math.abs(u.width - width) > 1 || u.height !== height)) u.setSize({ width, height });
    }
  });
  for (const host of document.querySelectorAll('#analytics .an-chart')) resized.observe(host);
}

/** Shows (true) or hides the view; `dropId` (from `#analytics=ID`) picks the drop. The router calls it on every hash change. */
export function showAnalytics(on, dropId = null) {
  $('analytics').hidden = !on;
  if (on) $('nav-analytics').setAttribute('aria-current', 'page');
  else $('nav-analytics').removeAttribute('aria-current');
  if (!on) {
    if (shown) document.title = 'dropwire · control panel';
    shown = false;
    return;
  }
  document.title = 'Analytics · dropwire panel';
  if (dropId) picked = dropId;
  if (!shown || !drops.size) { // first show, or again after a load that found nothing (or failed)
    shown = true;
    load(true);
  } else if (dropId && $('an-drop').value !== dropId) {
    $('an-drop').value = dropId;
    loadDrop();
  }
}

/** Reads the drops, then every part. */
async function load(fresh = false) {
  if (!api) return;
  if (fresh) details.clear();
  setText($('an-error'), '');
  const ready = loadUplot();
  const mine = ++asked.drops;
  const got = await readDrops();
  if (mine !== asked.drops || !shown) return;
  if (got.error) {
    setText($('an-error'), ledgerOff(got.error) ? LEDGER_OFF : `The drops did not load: ${errorText(got.error)}`);
    return;
  }
  drops = got.drops;
  const newest = [...drops.values()].sort((a, b) => b.startMs - a.startMs);
  if (!picked) picked = newest[0]?.id || null; // an unknown one (from the hash) stays: its load says so
  compared = compared.filter((id) => drops.has(id));
  if (!comparedSet || !compared.length) compared = newest.slice(0, DEFAULT_COMPARE).map((d) => d.id).reverse();
  renderPickers();
  try {
    await ready;
  } catch {
    setText($('an-error'), 'The chart library did not load; figures show without charts.');
  }
  if (!shown) return;
  await Promise.all([loadDrop(), loadCompare(), loadSummary()]);
  setText($('an-updated'), `updated ${new Date().toLocaleTimeString([], { hourCycle: 'h23' })}`);
}

/** Every page of the ledger's facts of `kind`. */
async function facts(kind) {
  const out = [];
  let after = null;
  for (let page = 0; page < 100; page += 1) {
    const r = await api('GET', `/ledger/facts?kind=${kind}&limit=1000${after === null ? '' : `&after=${after}`}`);
    if (!r.ok) return { error: r };
    out.push(...r.data.facts);
    if (r.data.next === undefined || r.data.next === null) break;
    after = r.data.next;
  }
  return { facts: out };
}

/** The drops the ledger knows (named by `drop.scheduled`, started by `drop.live`) and the hub's. */
async function readDrops() {
  const [scheduled, live, hub] = await Promise.all([facts('drop.scheduled'), facts('drop.live'), api('GET', '/drops')]);
  if (scheduled.error) return { error: scheduled.error };
  const out = new Map();
  for (const f of scheduled.facts) {
    const d = f.detail || {};
    out.set(f.drop_id, {
      id: f.drop_id, title: d.title || f.drop_id, kind: d.kind || 'drop', recipe: d.recipe || null,
      currency: typeof d.currency === 'string' && /^[A-Z]{3}$/.test(d.currency) ? d.currency : DEFAULT_CURRENCY,
      startMs: f.at_ms, scheduledMs: f.at_ms,
    });
  }
  for (const f of live.facts || []) {
    const d = out.get(f.drop_id);
    if (d && (d.liveMs === undefined || f.at_ms < d.liveMs)) {
      d.liveMs = f.at_ms;
      d.startMs = f.at_ms;
    }
  }
  for (const h of (hub.ok && hub.data.drops) || []) {
    if (!out.has(h.id)) out.set(h.id, { id: h.id, title: h.title, kind: h.kind || 'drop', recipe: null, currency: DEFAULT_CURRENCY, startMs: h.started_ms || h.created_ms });
  }
  return { drops: out };
}

function pick(id) {
  if (!id) return;
  picked = id;
  history.replaceState(null, '', `#analytics=${encodeURIComponent(id)}`);
  loadDrop();
}

function option(d) {
  return el('option', { value: d.id }, `${d.title} · ${d.kind} · ${dateOf(d.startMs)}`);
}

function renderPickers() {
  const newest = [...drops.values()].sort((a, b) => b.startMs - a.startMs);
  const select = $('an-drop');
  select.replaceChildren(...(newest.length ? newest.map(option) : [el('option', { value: '' }, 'No drops in the ledger yet')]));
  if (picked && !drops.has(picked)) select.append(el('option', { value: picked }, picked));
  select.value = picked || '';
  select.disabled = !newest.length;
  renderCompareChips();
}

function renderCompareChips() {
  const newest = [...drops.values()].sort((a, b) => b.startMs - a.startMs);
  const add = $('an-compare-add');
  const left = newest.filter((d) => !compared.includes(d.id));
  const full = compared.length >= MAX_COMPARE;
  const none = full ? `At most ${MAX_COMPARE} drops` : left.length ? '+ Add a drop…' : drops.size ? 'Every drop is compared' : 'No drops yet';
  add.replaceChildren(el('option', { value: '' }, none), ...left.map(option));
  add.disabled = full || !left.length;
  $('an-compare-chips').replaceChildren(...compared.map((id, i) => el('li', { class: 'an-chip', 'data-id': id },
    el('span', { class: 'an-swatch', style: { background: COLORS[i % COLORS.length] }, 'aria-hidden': 'true' }),
    el('span', { class: 'an-chip-name', title: id }, titleOf(id)),
    i === 0 ? el('span', { class: 'an-base' }, 'base') : null,
    el('button', { type: 'button', class: 'an-chip-x', 'aria-label': `Remove ${titleOf(id)} from the comparison`, onclick: () => {
      compared = compared.filter((x) => x !== id);
      comparedSet = true;
      renderCompareChips();
      loadCompare();
    } }, '×'))));
}

// ---------------------------------------------------------------- one drop

async function loadDrop() {
  const id = picked;
  const mine = ++asked.drop;
  setText($('an-drop-error'), '');
  $('an-drop-csv').disabled = !id;
  if (!id) {
    $('an-drop-body').hidden = true;
    $('an-drop-body').dataset.drop = '';
    setText($('an-drop-meta'), 'Nothing in the ledger yet: figures show once a drop has viewers, or after an import.');
    return;
  }
  const r = await api('GET', `/analytics/drops/${encodeURIComponent(id)}`);
  if (mine !== asked.drop || !shown) return;
  if (!r.ok) {
    $('an-drop-body').hidden = true;
    $('an-drop-body').dataset.drop = '';
    setText($('an-drop-meta'), '');
    setText($('an-drop-error'), r.status === 404 ? `No figures for ${titleOf(id)} yet: nothing in the ledger names it.`
      : ledgerOff(r) ? LEDGER_OFF : errorText(r));
    return;
  }
  const a = r.data;
  details.set(id, a);
  $('an-drop-body').hidden = false;
  $('an-drop-body').dataset.drop = id;
  const meta = [`${a.kind}${a.recipe ? ` · recipe ${a.recipe}` : ''}`, a.starts_ms ? `started ${new Date(a.starts_ms).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })}` : null,
    a.peak_viewers !== null && a.peak_viewers !== undefined ? `peak ${count(a.peak_viewers)} viewers` : null,
    `${count(a.buyers)} buyer${a.buyers === 1 ? '' : 's'}`, `prices in ${currencyOf(id)}`];
  setText($('an-drop-meta'), meta.filter(Boolean).join(' · '));
  renderFunnel(a);
  renderKpis(a, currencyOf(id));
  loadCurves();
}

function renderFunnel(a) {
  const f = a.funnel;
  $('an-funnel').replaceChildren(...STEPS.map((s, i) => {
    const prev = i ? f[STEPS[i - 1].key] : null;
    return el('li', { 'data-step': s.key },
      el('span', { class: 'an-swatch', style: { background: s.color }, 'aria-hidden': 'true' }),
      el('span', { class: 'an-step' }, s.label),
      el('strong', { class: 'v' }, count(f[s.key])),
      el('small', { class: 'an-of' }, i ? `${pct(prev ? f[s.key] / prev : null)} of ${STEPS[i - 1].label.toLowerCase()}` : 'unique'));
  }));
  barChart('funnel', {
    labels: STEPS.map((s) => s.label), narrowLabels: STEPS.map((s) => s.short || s.label),
    series: [{ label: 'Funnel', values: STEPS.map((s) => f[s.key]), colors: STEPS.map((s) => s.color) }],
    format: count, integer: true,
  });
}

function renderKpis(k, currency) {
  $('an-kpis').querySelector('tbody').replaceChildren(...KPIS.map(([key, label, what, base]) => {
    const v = key === 'revenue_cents' ? money(k[key], currency) : key === 'coupon_uses' ? count(k[key]) : pct(k[key]);
    const b = base ? base(k) : '';
    const of = Array.isArray(b) ? `${count(b[0])} of ${count(b[1])} ${b[2]}` : b;
    const open = key === 'repeat_90d' && k.repeat_90d_complete === false;
    return el('tr', { 'data-kpi': key },
      el('th', { scope: 'row' }, el('span', { class: 'an-kpi-name' }, joined(label)), el('small', {}, what)),
      el('td', { class: 'num value' }, el('span', { class: 'v' }, v),
        open ? el('span', { class: 'an-incomplete', title: 'A buyer’s 90 days are still running: this can still grow.' }, 'incomplete') : null,
        of ? el('small', { class: 'of' }, of) : null));
  }));
}

// ---------------------------------------------------------------- repeat curves

/** The curves of the picked drop and of the compared ones (each read once per load). */
async function loadCurves() {
  const ids = [...new Set([picked, ...compared].filter(Boolean))];
  const mine = ++asked.curves;
  const missing = ids.filter((id) => !details.has(id));
  const got = await Promise.all(missing.map((id) => api('GET', `/analytics/drops/${encodeURIComponent(id)}`)));
  if (mine !== asked.curves || !shown) return;
  missing.forEach((id, i) => { if (got[i].ok) details.set(id, got[i].data); });
  const shownIds = ids.filter((id) => details.has(id));
  const color = (id) => (compared.includes(id) ? COLORS[compared.indexOf(id) % COLORS.length] : INK);
  $('an-repeat-legend').replaceChildren(...shownIds.map((id) => {
    const a = details.get(id);
    const last = a.repeat_curve[a.repeat_curve.length - 1];
    return el('li', { 'data-id': id, class: id === picked ? 'picked' : null },
      el('span', { class: 'an-swatch', style: { background: color(id) }, 'aria-hidden': 'true' }),
      el('span', { class: 'an-legend-name' }, titleOf(id)),
      el('span', { class: 'v' }, `${pct(last?.share ?? null)} by day 90`),
      a.repeat_90d_complete === false ? el('span', { class: 'an-incomplete' }, 'incomplete') : null);
  }));
  if (!shownIds.length) {
    undraw('repeat');
    return;
  }
  const days = Array.from({ length: 91 }, (_, d) => d);
  const data = [days, ...shownIds.map((id) => {
    const byDay = new Map(details.get(id).repeat_curve.map((p) => [p.day, p.share]));
    return days.map((d) => byDay.get(d) ?? null);
  })];
  draw('repeat', data, (width, height) => ({
    width, height, legend: { show: false }, cursor: { show: false },
    scales: { x: { time: false, range: [0, 90] }, y: { range: [0, 1] } },
    axes: [
      axis({ splits: () => [0, 15, 30, 45, 60, 75, 90], values: (u, s) => s.map((d) => `${d} d`) }),
      axis({ splits: () => [0, 0.25, 0.5, 0.75, 1], values: (u, s) => s.map((v) => nf({ style: 'percent' }).format(v)), size: 52 }),
    ],
    series: [{}, ...shownIds.map((id) => ({
      label: titleOf(id), stroke: color(id), width: id === picked ? 3 : 2, points: { show: false },
      paths: window.uPlot.paths.stepped({ align: 1 }),
    }))],
  }));
}

// ---------------------------------------------------------------- compare

async function loadCompare() {
  const ids = compared.slice();
  const mine = ++asked.compare;
  setText($('an-compare-error'), '');
  $('an-compare-csv').disabled = !ids.length;
  if (!ids.length) {
    $('an-compare').replaceChildren(el('tbody', {}, el('tr', {}, el('td', { class: 'none' }, 'Add drops above to see them side by side.'))));
    $('an-compare-legend').replaceChildren();
    undraw('compare');
    loadCurves();
    return;
  }
  const r = await api('GET', `/analytics/compare?drops=${ids.map(encodeURIComponent).join(',')}`);
  if (mine !== asked.compare || !shown) return;
  if (!r.ok) {
    setText($('an-compare-error'), ledgerOff(r) ? LEDGER_OFF : errorText(r));
    $('an-compare').replaceChildren();
    undraw('compare');
    return;
  }
  renderCompare(r.data);
  loadCurves();
}

function renderCompare(c) {
  const base = c.drops[0];
  const diff = new Map(c.differences.map((d) => [d.drop_id, d]));
  const head = el('tr', {}, el('th', { scope: 'col' }, 'KPI'), ...c.drops.map((k, i) => el('th', { scope: 'col', class: 'num', 'data-drop': k.drop_id },
    el('span', { class: 'an-swatch', style: { background: COLORS[i % COLORS.length] }, 'aria-hidden': 'true' }),
    el('span', { class: 'an-col-name' }, k.title || k.drop_id),
    el('small', {}, `${k.kind} · ${dateOf(k.starts_ms)}${i === 0 ? ' · base' : ''}`))));
  const rows = COMPARE_ROWS.map(([key, label, kind, hasDiff]) => el('tr', { 'data-kpi': key },
    el('th', { scope: 'row' }, joined(label)),
    ...c.drops.map((k, i) => {
      const cur = currencyOf(k.drop_id);
      let d = null;
      if (i > 0 && hasDiff) {
        const raw = diff.get(k.drop_id)?.[key];
        let text;
        if (kind === 'money') text = cur === currencyOf(base.drop_id) ? money(raw, cur, { sign: true }) : '—';
        else text = pp(raw);
        const cls = raw > 0 ? 'up' : raw < 0 ? 'down' : 'same';
        d = el('span', { class: `diff ${cls}`, title: kind === 'money' && text === '—' ? 'Different currencies' : `vs ${base.title || base.drop_id}` }, text);
      }
      const open = key === 'repeat_90d' && k.repeat_90d_complete === false;
      return el('td', { class: 'num', 'data-drop': k.drop_id },
        el('span', { class: 'v' }, value(kind, k[key], cur)),
        open ? el('span', { class: 'an-incomplete', title: 'still running' }, 'incomplete') : null, d);
    })));
  $('an-compare').replaceChildren(el('thead', {}, head), el('tbody', {}, ...rows));
  $('an-compare').dataset.drops = c.drops.map((k) => k.drop_id).join(',');
  $('an-compare-legend').replaceChildren(...c.drops.map((k, i) => el('li', { 'data-id': k.drop_id },
    el('span', { class: 'an-swatch', style: { background: COLORS[i % COLORS.length] }, 'aria-hidden': 'true' }),
    el('span', { class: 'an-legend-name' }, k.title || k.drop_id))));
  barChart('compare', {
    labels: MAIN_RATIOS.map(([, l]) => l), narrowLabels: MAIN_RATIOS_NARROW,
    series: c.drops.map((k, i) => ({ label: k.title || k.drop_id, values: MAIN_RATIOS.map(([key]) => k[key]), colors: COLORS[i % COLORS.length] })),
    format: (v) => nf({ style: 'percent', maximumFractionDigits: 0 }).format(v), range: [0, 1],
    splits: [0, 0.25, 0.5, 0.75, 1],
  });
}

// ---------------------------------------------------------------- summary and LTV

/** The query of the summary form, or null (and the field marked) when it does not hold. */
function summaryQuery() {
  const form = $('an-summary-form');
  for (const n of form.querySelectorAll('.invalid')) n.classList.remove('invalid');
  for (const n of form.querySelectorAll('.field-error')) n.textContent = '';
  const from = $('an-from').value;
  const to = $('an-to').value;
  if (from && to && from > to) {
    showFieldError(form, 'to', 'is before From');
    return null;
  }
  const q = new URLSearchParams({ by: $('an-by').value });
  if (from) q.set('from', from);
  // The API's `to` is exclusive: the day after the last one asked for.
  if (to) q.set('to', new Date(Date.parse(`${to}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10));
  return q.toString();
}

async function loadSummary() {
  const q = summaryQuery();
  setText($('an-summary-error'), '');
  if (q === null) return;
  const mine = ++asked.summary;
  const r = await api('GET', `/analytics/summary?${q}`);
  if (mine !== asked.summary || !shown) return;
  if (!r.ok) {
    const err = r.data?.error || {};
    if (!showFieldError($('an-summary-form'), err.field, err.message || errorText(r))) {
      setText($('an-summary-error'), ledgerOff(r) ? LEDGER_OFF : errorText(r));
    }
    return;
  }
  summary = r.data;
  renderSummary(summary);
  $('an-summary').dataset.query = q;
  renderLtv(summary.ltv_by_kind);
}

/** The one currency of the drops `match` picks (in the summary's dates), "mixed", or the default. */
function currencyWhere(match, from = null, to = null) {
  const set = new Set([...drops.values()].filter((d) => match(d) && (from === null || d.startMs >= from) && (to === null || d.startMs < to)).map((d) => d.currency));
  if (set.size > 1) return 'mixed';
  return set.size ? [...set][0] : DEFAULT_CURRENCY;
}

function groupMatch(by, key) {
  if (by === 'kind') return (d) => d.kind === key;
  if (by === 'recipe') return (d) => (d.recipe || '(none)') === key;
  return (d) => utcMonth(d.startMs) === key;
}

function renderSummary(s) {
  const byLabel = { kind: 'Event type', recipe: 'Recipe', month: 'Month (UTC)' }[s.by] || s.by;
  const head = el('tr', {}, el('th', { scope: 'col' }, byLabel), ...SUMMARY_COLS.map(([, l]) => el('th', { scope: 'col', class: 'num' }, l)));
  const rows = s.groups.map((g) => {
    const cur = currencyWhere(groupMatch(s.by, g.key), s.from_ms ?? null, s.to_ms ?? null);
    return el('tr', { 'data-key': g.key },
      el('th', { scope: 'row' }, g.key),
      ...SUMMARY_COLS.map(([key, , kind]) => el('td', { class: 'num', 'data-col': key },
        el('span', { class: 'v' }, value(kind, g[key], cur)),
        key === 'repeat_90d' && g.repeat_90d_complete === false ? el('span', { class: 'an-incomplete', title: 'still running' }, 'incomplete') : null)));
  });
  if (!rows.length) rows.push(el('tr', {}, el('td', { class: 'none', colspan: String(SUMMARY_COLS.length + 1) }, 'No drops started in these dates.')));
  $('an-summary').replaceChildren(el('thead', {}, head), el('tbody', {}, ...rows));
}

function renderLtv(ltv) {
  setText($('an-ltv-error'), '');
  const rows = ltv.map((k) => {
    const cur = currencyWhere((d) => d.kind === k.kind);
    return el('tr', { 'data-kind': k.kind },
      el('th', { scope: 'row' }, k.kind),
      el('td', { class: 'num', 'data-col': 'buyers' }, el('span', { class: 'v' }, count(k.buyers))),
      ...LTV_WINDOWS.map(({ days }) => {
        const w = k.windows.find((x) => x.days === days);
        return el('td', { class: 'num', 'data-days': String(days) },
          el('span', { class: 'v' }, money(w?.ltv_cents ?? null, cur)),
          el('small', { class: 'an-n' }, w ? `${count(w.buyers)} buyer${w.buyers === 1 ? '' : 's'}` : ''));
      }));
  });
  if (!rows.length) rows.push(el('tr', {}, el('td', { class: 'none', colspan: '5' }, 'No buyers yet.')));
  $('an-ltv').querySelector('tbody').replaceChildren(...rows);
  const curs = ltv.map((k) => [k.kind, currencyWhere((d) => d.kind === k.kind)]);
  const distinct = [...new Set(curs.map(([, c]) => c))];
  const axisCur = distinct.length > 1 ? 'mixed' : distinct[0] || DEFAULT_CURRENCY;
  $('an-ltv-legend').replaceChildren(...LTV_WINDOWS.map((w) => el('li', {},
    el('span', { class: 'an-swatch', style: { background: w.color }, 'aria-hidden': 'true' }),
    el('span', { class: 'an-legend-name' }, `${w.days} days`))),
  ...(axisCur === 'mixed' ? [el('li', { class: 'an-cur' }, `amounts in ${curs.map(([k, c]) => `${c} (${k})`).join(', ')}`)] : []));
  if (!ltv.length) {
    undraw('ltv');
    return;
  }
  barChart('ltv', {
    labels: ltv.map((k) => `${k.kind} (${count(k.buyers)})`),
    series: LTV_WINDOWS.map(({ days, color }) => ({
      label: `${days} days`, colors: color,
      values: ltv.map((k) => {
        const c = k.windows.find((x) => x.days === days)?.ltv_cents;
        return c === null || c === undefined ? null : c / 100;
      }),
    })),
    format: (v) => (axisCur === 'mixed' ? nf({ maximumFractionDigits: 0 }).format(v) : money(v * 100, axisCur, { whole: true })),
  });
}

/** The LTV table as CSV (the API's summary CSV carries the groups only). */
export function ltvCsv(ltv) {
  const lines = ['kind,buyers,days,window_buyers,revenue_cents,ltv_cents'];
  for (const k of ltv) {
    for (const w of k.windows) lines.push([k.kind, k.buyers, w.days, w.buyers, w.revenue_cents, w.ltv_cents ?? ''].join(','));
  }
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------- CSV

/** Fetches `path` as CSV with the admin token and saves it (the server's file name, else `name`). */
function download(path, name, button, errorId) {
  return downloadCsv({ path, name, token: token(), button, errorEl: $(errorId) });
}
