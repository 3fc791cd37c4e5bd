// The panel's Analytics view (`#analytics`) in headless Chromium against the real binary: a
// small known history (history.mjs: three drops of three kinds) goes in through
// `POST /api/v1/ledger/import`; every figure the view shows (funnel, KPI table, repeat
// curves, comparison with its differences, LTV by event type, summary) is checked against
// what the API answers, formatted as the view promises (en-US: "66.7%", "€102.00", "+25.0 pp",
// "—" for none); every chart's canvas is checked to have a size and its series' colours
// painted; each "Download CSV" saves what the API's CSV is. Screenshots: /tmp/analytics-*.png
// and test-artifacts/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hub, browser, watch, dropSpec, ADMIN, SHOTS } from './harness.mjs';
import { history, ndjson, DROPS, T0 } from './history.mjs';

let hub;
let b;
const pages = [];
const { mugs, workshop, demo } = DROPS;
const CURRENCY = { [mugs.id]: 'EUR', [workshop.id]: 'EUR', [demo.id]: 'USD', 'an-live-mugs': 'EUR' };
const KIND_CURRENCY = { drop: 'EUR', workshop: 'EUR', demo: 'USD' };
const CHARTS = ['funnel', 'repeat', 'compare', 'ltv'];

// What the view promises, in the en-US locale the pages run in.
const pct = (r) => (r === null ? '—' : new Intl.NumberFormat('en-US', { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(r));
const pp = (d) => (d === null ? '—' : `${new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1, signDisplay: 'exceptZero' }).format(d * 100)} pp`);
const money = (cents, currency, sign = false) => (cents === null ? '—'
  : new Intl.NumberFormat('en-US', { style: 'currency', currency, ...(sign ? { signDisplay: 'exceptZero' } : {}) }).format(cents / 100));
const count = (n) => new Intl.NumberFormat('en-US').format(n);

before(async () => {
  hub = await Hub.start();
  b = await browser();
  const facts = history(Date.now());
  const resp = await fetch(`${hub.base}/api/v1/ledger/import`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/x-ndjson' }, body: ndjson(facts),
  });
  assert.equal(resp.status, 200, await resp.clone().text());
  assert.deepEqual(await resp.json(), { lines: facts.length, recorded: facts.length, duplicates: 0 });
});

after(async () => {
  await b?.close();
  await hub?.stop();
});

async function csvOf(path) {
  const resp = await fetch(`${hub.base}/api/v1${path}`, { headers: { authorization: `Bearer ${ADMIN}`, accept: 'text/csv' } });
  assert.equal(resp.status, 200);
  assert.match(resp.headers.get('content-type'), /^text\/csv/);
  return resp.text();
}

/** A logged-in panel page at `hash`, in its own context (en-US, UTC). */
async function panel(name, viewport, hash) {
  const ctx = await b.newContext({ viewport, locale: 'en-US', timezoneId: 'UTC', acceptDownloads: true });
  const page = watch(await ctx.newPage(), name);
  pages.push(page);
  await page.goto(`${hub.base}/panel#${hash}`);
  await page.fill('#token', ADMIN);
  await page.press('#token', 'Enter');
  await page.waitForSelector('#analytics:not([hidden])');
  await drawn(page);
  return page;
}

/** Waits until every chart has drawn (after a load or a change). */
const drawn = (page) => page.waitForFunction((names) => names.every((n) => document.querySelector(`.an-chart[data-chart="${n}"]`).dataset.state === 'drawn'), CHARTS);

function noPageErrors() {
  const errors = pages.splice(0).flatMap((p) => p.errors);
  assert.deepEqual(errors, [], 'no uncaught errors in the pages');
}

async function shot(page, name, opts = {}) {
  await page.screenshot({ path: `/tmp/analytics-${name}.png`, ...opts });
  await page.screenshot({ path: join(SHOTS, `analytics-${name}.png`), ...opts });
}

/**
 * The chart's canvas: its size, how much of it is painted, and how many pixels carry each
 * colour of the swatches `swatches` selects (the series' colours, as the legend shows them).
 */
function paint(page, name, swatches) {
  return page.evaluate(([chart, sel]) => {
    const host = document.querySelector(`.an-chart[data-chart="${chart}"]`);
    const canvas = host.querySelector('canvas');
    if (!canvas) return null;
    const colors = [...document.querySelectorAll(sel)].map((s) => getComputedStyle(s).backgroundColor.match(/\d+/g).slice(0, 3).map(Number));
    const { width, height } = canvas;
    const px = canvas.getContext('2d').getImageData(0, 0, width, height).data;
    const hits = colors.map(() => 0);
    let painted = 0;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3] === 0) continue;
      painted += 1;
      colors.forEach(([r, g, bl], k) => {
        if (px[i + 3] > 240 && Math.abs(px[i] - r) < 10 && Math.abs(px[i + 1] - g) < 10 && Math.abs(px[i + 2] - bl) < 10) hits[k] += 1;
      });
    }
    const box = canvas.getBoundingClientRect();
    return { width, height, cssWidth: box.width, cssHeight: box.height, hostWidth: host.clientWidth, painted, share: painted / (width * height), hits, colors: colors.length };
  }, [name, swatches]);
}

/** Asserts chart `name` drew: a sized canvas, not blank, each series' colour on it. */
async function assertDrawn(page, name, swatches, { minHits = 40, each = null, minShare = 0.01 } = {}) {
  const p = await paint(page, name, swatches);
  assert.ok(p, `${name}: a canvas`);
  if (process.env.DEBUG) console.log(name, JSON.stringify(p));
  assert.ok(p.width > 150 && p.height > 150 && p.cssWidth > 150 && p.cssHeight > 150, `${name}: a size (${JSON.stringify(p)})`);
  assert.ok(p.cssWidth <= p.hostWidth + 1, `${name}: fits its box (${p.cssWidth} > ${p.hostWidth})`);
  assert.ok(p.share > minShare, `${name}: not blank (${p.painted} painted pixels)`);
  assert.ok(p.colors > 0, `${name}: swatches ${swatches}`);
  (each || p.hits.map((_, i) => i)).forEach((i) => assert.ok(p.hits[i] >= minHits, `${name}: series ${i} painted (${p.hits})`));
  return p;
}

const texts = (page, sel) => page.$$eval(sel, (nodes) => nodes.map((n) => n.textContent.trim()));

/** The drop part, checked against `GET /analytics/drops/{id}`. */
async function checkDrop(page, id) {
  await page.waitForSelector(`#an-drop-body[data-drop="${id}"]`);
  const a = await hub.api('GET', `/analytics/drops/${id}`);
  const cur = CURRENCY[id];
  assert.deepEqual(await texts(page, '#an-funnel li .v'), ['viewers', 'waitlist', 'claims', 'redemptions'].map((k) => count(a.funnel[k])));
  assert.deepEqual(await texts(page, '#an-funnel li .an-step'), ['Viewers', 'Waitlist', 'Claims', 'Redemptions']);
  const shown = Object.fromEntries(await page.$$eval('#an-kpis tbody tr', (rows) => rows.map((r) => [r.dataset.kpi, {
    v: r.querySelector('.v').textContent, incomplete: !!r.querySelector('.an-incomplete'), of: r.querySelector('.of')?.textContent || '',
  }])));
  assert.deepEqual(Object.keys(shown), ['intent_to_buy', 'claim_rate', 'conversion_48h', 'coupon_uses', 're_engagement', 'revenue_cents', 'repeat_90d']);
  for (const k of ['intent_to_buy', 'claim_rate', 'conversion_48h', 're_engagement', 'repeat_90d']) assert.equal(shown[k].v, pct(a[k]), k);
  assert.equal(shown.coupon_uses.v, count(a.coupon_uses));
  assert.equal(shown.revenue_cents.v, money(a.revenue_cents, cur));
  assert.equal(shown.repeat_90d.incomplete, !a.repeat_90d_complete, 'the "incomplete" marker follows repeat_90d_complete');
  assert.equal(shown.claim_rate.of, `${a.claimers} of ${a.unique_viewers} viewers`);
  assert.equal(shown.intent_to_buy.of, `${a.waitlist_claimers} of ${a.waitlist} waitlisters`);
  assert.equal(shown.repeat_90d.of, `${a.repeat_buyers_90d} of ${a.buyers} buyers`);
  assert.match(await page.textContent('#an-drop-meta'), new RegExp(`prices in ${cur}`));
  const steps = ['viewers', 'waitlist', 'claims', 'redemptions'].flatMap((k, i) => (a.funnel[k] > 0 ? [i] : []));
  // With no bars, the axes and grid alone are on it.
  await assertDrawn(page, 'funnel', '#an-funnel .an-swatch', { each: steps, minShare: steps.length ? 0.01 : 0.001 });
  return { a, shown };
}

/** The comparison, checked against `GET /analytics/compare?drops=…` for `ids` (in order). */
async function checkCompare(page, ids) {
  await page.waitForSelector(`#an-compare[data-drops="${ids.join(',')}"]`);
  assert.deepEqual(await page.$$eval('#an-compare-chips li', (lis) => lis.map((li) => li.dataset.id)), ids);
  assert.match(await page.textContent('#an-compare-chips li:first-child'), /base/);
  const c = await hub.api('GET', `/analytics/compare?drops=${ids.join(',')}`);
  assert.deepEqual(c.drops.map((k) => k.drop_id), ids);
  const rows = { unique_viewers: 'count', waitlist: 'count', claims: 'count', redeemed: 'count', intent_to_buy: 'ratio', claim_rate: 'ratio',
    conversion_48h: 'ratio', coupon_uses: 'count', re_engagement: 'ratio', revenue_cents: 'money', repeat_90d: 'ratio' };
  assert.deepEqual(await page.$$eval('#an-compare tbody tr', (trs) => trs.map((tr) => tr.dataset.kpi)), Object.keys(rows));
  const diffs = new Map(c.differences.map((d) => [d.drop_id, d]));
  for (const [i, k] of c.drops.entries()) {
    for (const [key, kind] of Object.entries(rows)) {
      const cell = `#an-compare tr[data-kpi="${key}"] td[data-drop="${k.drop_id}"]`;
      const expect = kind === 'ratio' ? pct(k[key]) : kind === 'money' ? money(k[key], CURRENCY[k.drop_id]) : count(k[key]);
      assert.equal(await page.textContent(`${cell} .v`), expect, `${k.drop_id} ${key}`);
      const diff = await page.$(`${cell} .diff`);
      if (i === 0 || kind === 'count') {
        assert.equal(diff, null, `no difference for ${k.drop_id} ${key}`);
        continue;
      }
      const d = diffs.get(k.drop_id);
      assert.equal(d.versus, ids[0]);
      const want = kind === 'money' ? (CURRENCY[k.drop_id] === CURRENCY[ids[0]] ? money(d[key], CURRENCY[k.drop_id], true) : '—') : pp(d[key]);
      assert.equal(await diff.textContent(), want, `difference of ${k.drop_id} ${key}`);
    }
  }
  await assertDrawn(page, 'compare', '#an-compare-legend .an-swatch');
  return c;
}

/** LTV by event type, checked against the summary's `ltv_by_kind`. */
async function checkLtv(page) {
  const s = await hub.api('GET', '/analytics/summary');
  assert.deepEqual(await page.$$eval('#an-ltv tbody tr', (trs) => trs.map((tr) => tr.dataset.kind)), s.ltv_by_kind.map((k) => k.kind));
  for (const k of s.ltv_by_kind) {
    const row = `#an-ltv tr[data-kind="${k.kind}"]`;
    assert.equal(await page.textContent(`${row} td[data-col="buyers"] .v`), count(k.buyers));
    for (const w of k.windows) {
      assert.equal(await page.textContent(`${row} td[data-days="${w.days}"] .v`), money(w.ltv_cents, KIND_CURRENCY[k.kind]), `${k.kind} ${w.days} d`);
      assert.equal(await page.textContent(`${row} td[data-days="${w.days}"] .an-n`), `${w.buyers} buyer${w.buyers === 1 ? '' : 's'}`);
    }
  }
  await assertDrawn(page, 'ltv', '#an-ltv-legend .an-swatch');
  return s;
}

/** The summary table, checked against `GET /analytics/summary?{query}`. */
async function checkSummary(page, query, currencyOf) {
  await page.waitForSelector(`#an-summary[data-query="${query}"]`);
  const s = await hub.api('GET', `/analytics/summary?${query}`);
  assert.deepEqual(await page.$$eval('#an-summary tbody tr', (trs) => trs.map((tr) => tr.dataset.key)), s.groups.map((g) => g.key));
  const cols = { drops: 'count', unique_viewers: 'count', waitlist: 'count', claims: 'count', redeemed: 'count', intent_to_buy: 'ratio',
    claim_rate: 'ratio', conversion_48h: 'ratio', coupon_uses: 'count', re_engagement: 'ratio', revenue_cents: 'money', repeat_90d: 'ratio' };
  for (const g of s.groups) {
    for (const [key, kind] of Object.entries(cols)) {
      const want = kind === 'ratio' ? pct(g[key]) : kind === 'money' ? money(g[key], currencyOf(g.key)) : count(g[key]);
      assert.equal(await page.textContent(`#an-summary tr[data-key="${g.key}"] td[data-col="${key}"] .v`), want, `${g.key} ${key}`);
    }
    assert.equal(!!(await page.$(`#an-summary tr[data-key="${g.key}"] td[data-col="repeat_90d"] .an-incomplete`)), !g.repeat_90d_complete);
  }
  return s;
}

/** Clicks a "Download CSV" button; the saved file's name and text. */
async function download(page, button) {
  const [d] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
  return { name: d.suggestedFilename(), text: readFileSync(await d.path(), 'utf8') };
}

test('the imported history gives the figures it was built for', async () => {
  const m = await hub.api('GET', `/analytics/drops/${mugs.id}`);
  assert.deepEqual(m.funnel, { viewers: 10, waitlist: 4, claims: 4, redemptions: 3 });
  assert.deepEqual([m.intent_to_buy, m.claim_rate, m.conversion_48h, m.coupon_uses, m.re_engagement, m.revenue_cents, m.buyers, m.repeat_buyers_90d, m.repeat_90d_complete],
    [0.75, 0.4, 0.5, 1, 0, 10200, 3, 2, true]);
  assert.equal(m.starts_ms, T0);
  assert.deepEqual([9, 10, 29, 30, 90].map((d) => m.repeat_curve[d].share), [0, 1 / 3, 1 / 3, 2 / 3, 2 / 3]);
  const w = await hub.api('GET', `/analytics/drops/${workshop.id}`);
  assert.deepEqual(w.funnel, { viewers: 8, waitlist: 2, claims: 2, redemptions: 2 });
  assert.deepEqual([w.re_engagement, w.revenue_cents, w.repeat_90d], [0.25, 10000, 0]);
  const d = await hub.api('GET', `/analytics/drops/${demo.id}`);
  assert.deepEqual(d.funnel, { viewers: 5, waitlist: 0, claims: 1, redemptions: 1 });
  assert.deepEqual([d.intent_to_buy, d.repeat_90d_complete], [null, false]);
});

test('desktop: the Analytics view shows the API\'s figures for a drop, the repeat curves, a comparison, LTV by event type and a summary, each chart drawn and each CSV downloadable', async () => {
  const page = await panel('analytics-desktop', { width: 1440, height: 900 }, 'analytics');
  assert.equal(await page.getAttribute('#nav-analytics', 'aria-current'), 'page');
  assert.equal(await page.title(), 'Analytics · dropwire panel');
  assert.equal(await page.isVisible('#empty'), false);
  assert.equal(await page.isVisible('#webhooks'), false);

  // The newest drop shows first: the demo, whose repeat window is still open.
  assert.equal(await page.inputValue('#an-drop'), demo.id);
  assert.deepEqual(await page.$$eval('#an-drop option', (os) => os.map((o) => o.value)), [demo.id, workshop.id, mugs.id]);
  const first = await checkDrop(page, demo.id);
  assert.equal(first.shown.intent_to_buy.v, '—', 'no waitlist: no intent-to-buy');
  assert.equal(first.shown.revenue_cents.v, '$25.00', 'in the drop\'s currency');
  assert.equal(first.shown.repeat_90d.incomplete, true);

  // Pick the mugs: the figures the history was built for, formatted.
  await page.selectOption('#an-drop', mugs.id);
  const { shown } = await checkDrop(page, mugs.id);
  assert.deepEqual(Object.values(shown).map((s) => s.v), ['75.0%', '40.0%', '50.0%', '1', '0.0%', '€102.00', '66.7%']);
  assert.equal(shown.repeat_90d.incomplete, false);
  assert.deepEqual(await texts(page, '#an-funnel li .v'), ['10', '4', '4', '3']);
  assert.equal(new URL(page.url()).hash, `#analytics=${mugs.id}`, 'the pick is in the address');

  // The repeat curves: the picked drop and the compared ones (by default the three newest, oldest first).
  await page.waitForFunction((id) => document.querySelector(`#an-repeat-legend li.picked[data-id="${id}"]`), mugs.id);
  const legend = Object.fromEntries(await page.$$eval('#an-repeat-legend li', (lis) => lis.map((li) => [li.dataset.id, li.querySelector('.v').textContent])));
  assert.deepEqual(legend, { [mugs.id]: '66.7% by day 90', [workshop.id]: '0.0% by day 90', [demo.id]: '0.0% by day 90' });
  await assertDrawn(page, 'repeat', `#an-repeat-legend li[data-id="${mugs.id}"] .an-swatch`, { minHits: 150 });

  // Compare: all three by default, the oldest the base; then without the workshop; then with it again, last.
  await checkCompare(page, [mugs.id, workshop.id, demo.id]);
  assert.equal(await page.textContent(`#an-compare tr[data-kpi="revenue_cents"] td[data-drop="${workshop.id}"] .diff`), '-€2.00');
  assert.equal(await page.textContent(`#an-compare tr[data-kpi="revenue_cents"] td[data-drop="${demo.id}"] .diff`), '—', 'no difference across currencies');
  assert.equal(await page.textContent(`#an-compare tr[data-kpi="claim_rate"] td[data-drop="${workshop.id}"] .diff`), '-15.0 pp');
  assert.equal(await page.textContent(`#an-compare tr[data-kpi="conversion_48h"] td[data-drop="${demo.id}"] .diff`), '+50.0 pp');
  await shot(page, 'desktop-1440x900');
  await page.click(`#an-compare-chips li[data-id="${workshop.id}"] .an-chip-x`);
  await checkCompare(page, [mugs.id, demo.id]);
  await page.selectOption('#an-compare-add', workshop.id);
  await checkCompare(page, [mugs.id, demo.id, workshop.id]);
  await page.waitForFunction(() => document.querySelectorAll('#an-repeat-legend li').length === 3);

  // LTV by event type.
  await checkLtv(page);
  assert.equal(await page.textContent('#an-ltv tr[data-kind="drop"] td[data-days="30"] .v'), '€57.33');
  assert.equal(await page.textContent('#an-ltv tr[data-kind="demo"] td[data-days="365"] .v'), '—', 'no closed window yet');

  // The summary: by event type, then by month within March 2025 (the "to" day included).
  const byKind = await checkSummary(page, 'by=kind', (key) => KIND_CURRENCY[key]);
  assert.deepEqual(byKind.groups.map((g) => [g.key, g.drops]), [['demo', 1], ['drop', 1], ['workshop', 1]]);
  await page.selectOption('#an-by', 'month');
  await page.fill('#an-from', '2025-03-01');
  await page.fill('#an-to', '2025-03-31');
  const march = await checkSummary(page, 'by=month&from=2025-03-01&to=2025-04-01', () => 'EUR');
  assert.deepEqual(march.groups.map((g) => [g.key, g.drops, g.revenue_cents]), [['2025-03', 2, 20200]]);
  assert.equal(await page.textContent('#an-summary tr[data-key="2025-03"] td[data-col="revenue_cents"] .v'), '€202.00');

  // A "to" before "from" is refused beside the field, and the table stays.
  await page.fill('#an-to', '2025-02-01');
  await page.waitForFunction(() => document.querySelector('#an-to').classList.contains('invalid'));
  assert.equal(await page.textContent('#an-to + .field-error'), 'is before From');
  await page.fill('#an-to', '2025-03-31');
  await page.waitForFunction(() => !document.querySelector('#an-to').classList.contains('invalid'));

  // Every CSV is the API's (the LTV one is made in the page from the same answer).
  const dropCsv = await download(page, '#an-drop-csv');
  assert.equal(dropCsv.name, `analytics-${mugs.id}.csv`);
  assert.equal(dropCsv.text, await csvOf(`/analytics/drops/${mugs.id}`));
  assert.match(dropCsv.text, /^drop_id,title,kind,recipe,starts_ms,/);
  const compareCsv = await download(page, '#an-compare-csv');
  assert.equal(compareCsv.name, 'analytics-compare.csv');
  assert.equal(compareCsv.text, await csvOf(`/analytics/compare?drops=${[mugs.id, demo.id, workshop.id].join(',')}`));
  assert.equal(compareCsv.text.trim().split('\n').length, 4);
  const summaryCsv = await download(page, '#an-summary-csv');
  assert.equal(summaryCsv.name, 'analytics-by-month.csv');
  assert.equal(summaryCsv.text, await csvOf('/analytics/summary?by=month&from=2025-03-01&to=2025-04-01'));
  assert.match(summaryCsv.text, /\n2025-03,2,18,/);
  const ltvCsv = await download(page, '#an-ltv-csv');
  assert.equal(ltvCsv.name, 'ltv-by-kind.csv');
  const ltvLines = ltvCsv.text.trim().split('\n');
  assert.equal(ltvLines[0], 'kind,buyers,days,window_buyers,revenue_cents,ltv_cents');
  const s = await hub.api('GET', '/analytics/summary');
  assert.deepEqual(ltvLines.slice(1), s.ltv_by_kind.flatMap((k) => k.windows.map((w) => [k.kind, k.buyers, w.days, w.buyers, w.revenue_cents, w.ltv_cents ?? ''].join(','))));
  assert.equal(await page.textContent('#an-drop-error'), '');
  assert.equal(await page.textContent('#an-compare-error'), '');
  assert.equal(await page.textContent('#an-summary-error'), '');

  // The whole view, and each part.
  await page.locator('#an-drop').scrollIntoViewIfNeeded();
  await shot(page, 'desktop-1440x900-full', { fullPage: true });
  noPageErrors();
});

test('phone (390 px): the view stacks, every chart fits the screen and draws, the drop comes from the address', async () => {
  const page = await panel('analytics-mobile', { width: 390, height: 844 }, `analytics=${mugs.id}`);
  assert.equal(await page.inputValue('#an-drop'), mugs.id);
  await checkDrop(page, mugs.id);
  await checkCompare(page, [mugs.id, workshop.id, demo.id]);
  await checkLtv(page);
  await assertDrawn(page, 'repeat', `#an-repeat-legend li[data-id="${mugs.id}"] .an-swatch`, { minHits: 100 });
  const widths = await page.evaluate(() => ({
    page: document.documentElement.scrollWidth,
    charts: [...document.querySelectorAll('.an-chart')].map((h) => [h.getBoundingClientRect().right, h.querySelector('canvas').getBoundingClientRect().right]),
  }));
  assert.ok(widths.page <= 390, `no sideways scrolling (${widths.page})`);
  for (const [host, canvas] of widths.charts) assert.ok(host <= 390 && canvas <= host + 1, `a chart fits (${host}, ${canvas})`);
  // Two columns of funnel figures, the KPI table below the chart.
  const [chart, kpis] = await Promise.all([page.locator('#an-funnel-chart').boundingBox(), page.locator('#an-kpis').boundingBox()]);
  assert.ok(kpis.y > chart.y + chart.height, 'the KPI table is under the funnel');
  await shot(page, 'mobile-390x844');
  await shot(page, 'mobile-390x844-full', { fullPage: true });
  noPageErrors();
});

test('a drop made in the panel has its analytics a click away: zeros, and "—" where there is no base', async () => {
  await hub.api('POST', '/drops', dropSpec('an-live-mugs'));
  const page = await panel('analytics-link', { width: 1280, height: 800 }, 'analytics');
  assert.ok((await page.$$eval('#an-drop option', (os) => os.map((o) => o.value))).includes('an-live-mugs'));
  await page.goto(`${hub.base}/panel#drop=an-live-mugs`);
  await page.waitForSelector('#drop:not([hidden])');
  assert.equal(await page.isVisible('#analytics'), false);
  await page.waitForFunction(() => document.querySelector('#drop-analytics').getAttribute('href') === '#analytics=an-live-mugs');
  await page.click('#drop-analytics');
  await page.waitForSelector('#analytics:not([hidden])');
  assert.equal(await page.isVisible('#drop'), false);
  const { a, shown } = await checkDrop(page, 'an-live-mugs');
  assert.deepEqual(a.funnel, { viewers: 0, waitlist: 0, claims: 0, redemptions: 0 });
  assert.deepEqual(Object.values(shown).map((s) => s.v), ['—', '—', '—', '0', '—', '€0.00', '—']);
  assert.equal(await page.inputValue('#an-drop'), 'an-live-mugs');
  noPageErrors();
});
