// The waitlist and early access in headless Chromium against the real binary: a viewer
// joins in one click before the drop and stays joined across a reload; after the reveal
// it claims early while a viewer who did not join counts down to the public opening; the
// panel shows the list, its segments and a CSV. Screenshots land in /tmp/overlay-*.png
// and test-artifacts/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hub, browser, viewer, openPage, ADMIN, SHOTS } from './harness.mjs';

let hub;
let b;
const pages = [];

before(async () => {
  hub = await Hub.start();
  b = await browser();
});

after(async () => {
  await b?.close();
  await hub?.stop();
});

async function track(promise) {
  const page = await promise;
  pages.push(page);
  return page;
}

function noPageErrors() {
  const errors = pages.splice(0).flatMap((p) => p.errors);
  assert.deepEqual(errors, [], 'no uncaught errors in the pages');
}

async function shot(page, name, opts = {}) {
  await page.screenshot({ path: `/tmp/overlay-${name}.png`, ...opts });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), ...opts });
}

const text = (page, sel) => page.locator(sel).innerText();
const until = async (ms) => { while (Date.now() < ms) await new Promise((ok) => setTimeout(ok, 20)); };

/** A drop with a T-shirt in two sizes, revealed by cue 1 (fired by hand), and early access. */
function teeSpec(id, { earlyAccess = 600, startsAt } = {}) {
  return {
    id, title: 'Glaze-dyed tees, run 3', kind: 'drop', currency: 'EUR', hold_s: 900,
    ...(startsAt ? { starts_at: startsAt } : {}),
    early_access_s: earlyAccess,
    inventory: [{ sku: 'tee', name: 'Glaze-dyed tee', price_cents: 2800, stock: 5, per_viewer_limit: 1, variants: ['S', 'M'] }],
    script: { duration_s: 3600, cues: [
      { at_s: 0, type: 'intro', title: 'Welcome to the dye room' },
      { at_s: 3000, type: 'reveal', sku: 'tee', title: 'Run 3 is here' },
      { at_s: 3600, type: 'close' },
    ] },
  };
}

/** The panel, logged in, showing drop `id`. */
async function panelFor(id) {
  const panel = await track(openPage(b, 'panel', { width: 1920, height: 1080 }));
  await panel.goto(`${hub.base}/panel#drop=${id}`);
  await panel.fill('#token', ADMIN);
  await panel.press('#token', 'Enter');
  await panel.waitForFunction(() => document.querySelector('#drop-state').textContent === 'scheduled');
  return panel;
}

test('one click joins the waitlist, a reload keeps it; after the reveal the waitlist claims early, others count down; the panel shows the list', async () => {
  const startsAt = new Date(Date.now() + 2 * 3600 * 1000).toISOString();
  await hub.api('POST', '/drops', teeSpec('wl-tees', { startsAt }));

  const ana = await track(viewer(b, hub, 'wl-tees', 'ana', { width: 390, height: 844 }));
  // Before the drop: a countdown to starts_at and the one-click join (once /me said 404).
  await ana.waitForFunction(() => !document.querySelector('#waitlist').hidden && !document.querySelector('#wl-join').disabled);
  assert.match(await text(ana, '#next-label'), /^Starts in/);
  assert.match(await text(ana, '#next-time'), /^(1:59:\d\d|2:00:00)$/);
  assert.equal(await text(ana, '#wl-join'), 'Join the waitlist');
  assert.match(await text(ana, '#wl-pitch'), /10 min before everyone else/);
  assert.equal(await ana.isVisible('#claim-result'), false, 'the waitlist sits where the claim result goes');
  const claimBox = await ana.locator('#claim').boundingBox();
  await shot(ana, 'waitlist-before-390x844', { fullPage: true });

  await ana.click('#wl-join');
  await ana.waitForFunction(() => document.querySelector('#wl-status').textContent === 'You’re on the list — #1');
  assert.equal(await text(ana, '#wl-early'), 'Early access: you can claim 10 min before everyone else');
  assert.equal(await ana.isVisible('#wl-join'), false);
  // The optional part: no piece is revealed yet, so there is no size or piece to pick.
  await ana.click('#wl-more summary');
  assert.equal(await ana.isVisible('#wl-size'), false, 'no visible variants: no size picker');
  assert.equal(await ana.isVisible('#wl-items-field'), false);
  assert.equal(await ana.isDisabled('#wl-contact'), true, 'an e-mail needs consent first');
  await shot(ana, 'waitlist-joined-390x844', { fullPage: true });

  let list = await hub.api('GET', '/drops/wl-tees/waitlist');
  assert.equal(list.count, 1);
  assert.deepEqual(list.entries.map((e) => [e.position, e.handle]), [[1, 'ana']]);

  // A reload asks /me and shows the joined state; nothing is posted again.
  await ana.reload();
  await ana.waitForFunction(() => document.body.dataset.connected === 'yes');
  await ana.waitForFunction(() => document.querySelector('#wl-status').textContent === 'You’re on the list — #1');
  assert.equal(await ana.isVisible('#wl-join'), false);
  list = await hub.api('GET', '/drops/wl-tees/waitlist');
  assert.equal(list.count, 1, 'a reload does not join twice');
  assert.equal(list.entries[0].updated_ms, list.entries[0].joined_ms, 'nor update the entry');

  // A viewer who does not join.
  const bo = await track(viewer(b, hub, 'wl-tees', 'bo', { width: 390, height: 844 }));
  await bo.waitForFunction(() => !document.querySelector('#wl-join').disabled);

  // The panel: count, consent, segments, entries, CSV.
  const panel = await panelFor('wl-tees');
  await panel.waitForFunction(() => document.querySelector('#wl-count').textContent === '1');
  assert.equal(await text(panel, '#wl-consented'), '0');
  assert.deepEqual(await panel.$$eval('#wl-entries tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent))),
    [['1', 'ana', '—', '—', 'no', '—']]);
  assert.deepEqual(await panel.$$eval('#wl-segments tbody td', (cells) => cells.map((c) => c.textContent)), ['1']);
  assert.match(await text(panel, '#wl-segments'), /any size[\s\S]*any item|any item[\s\S]*any size/);
  const [download] = await Promise.all([panel.waitForEvent('download'), panel.click('#wl-csv')]);
  assert.equal(download.suggestedFilename(), 'waitlist-wl-tees.csv');
  const csv = readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/);
  assert.equal(csv[0], 'position,viewer_id,handle,size,items,note,marketing_consent,contact,joined_ms,updated_ms');
  assert.equal(csv.length, 2);
  assert.match(csv[1], /^1,[^,]+,ana,,,,false,,\d+,\d+$/);
  await panel.locator('#waitlist').scrollIntoViewIfNeeded();
  await shot(panel, 'panel-waitlist-1920x1080');

  // The drop starts and the tee is revealed: ten minutes for the waitlist alone.
  await hub.api('POST', '/drops/wl-tees/start', {});
  const fired = await hub.api('POST', '/drops/wl-tees/fire', { cue: 1 });
  assert.equal(fired.early_access.length, 1);
  await ana.waitForFunction(() => document.querySelector('#card').dataset.kind === 'reveal');
  assert.equal(await ana.isVisible('#waitlist'), false, 'the waitlist is a pre-drop thing');
  await ana.waitForFunction(() => document.querySelector('#claim-result').dataset.early === 'mine');
  assert.equal(await text(ana, '.early-tag'), 'Early access: claim now');
  assert.match(await text(ana, '#claim-result'), /Opens to everyone in (9|10):\d\d/);
  await ana.waitForFunction(() => !document.querySelector('#claim').disabled);
  assert.match(await text(ana, '#claim'), /^Claim early · /);
  assert.deepEqual(await ana.locator('#claim').boundingBox(), claimBox, 'the Claim button does not move at go-live');

  await bo.waitForFunction(() => document.querySelector('#claim-result').dataset.early === 'wait');
  assert.match(await text(bo, '#claim-result'), /Opens to everyone in (9|10):\d\d/);
  assert.match(await text(bo, '#claim'), /^Opens in (9|10):\d\d$/);
  assert.equal(await bo.isDisabled('#claim'), true);
  await shot(ana, 'early-mine-390x844', { fullPage: true });
  await shot(bo, 'early-wait-390x844', { fullPage: true });

  await ana.click('#claim');
  await ana.waitForFunction(() => document.querySelector('#claim-result').dataset.ok === 'yes');
  const code = await text(ana, '.claim-code');
  assert.match(code, /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
  const claims = await hub.api('GET', '/drops/wl-tees/claims');
  assert.deepEqual(claims.claims.map((c) => [c.code, c.handle]), [[code, 'ana']]);

  // Should bo's page send a claim anyway, the hub's `not_open` with `opens_at_ms` keeps the countdown.
  await bo.evaluate(() => {
    const button = document.querySelector('#claim');
    button.disabled = false;
    button.click();
  });
  await bo.waitForFunction(() => document.querySelector('#claim-result').dataset.shown === 'early:false'
    && document.querySelector('#claim').disabled);
  assert.match(await text(bo, '#claim-result'), /Opens to everyone in (9|10):\d\d/);
  assert.equal((await hub.api('GET', '/drops/wl-tees/claims')).claims.length, 1);
  noPageErrors();
  await Promise.all([ana, bo, panel].map((p) => p.context().close()));
});

test('without a handle the join asks for one first; the optional details update the entry; when early access ends everyone may claim', async () => {
  await hub.api('POST', '/drops', teeSpec('wl-short', { earlyAccess: 8 }));
  const panel = await panelFor('wl-short');
  await panel.waitForFunction(() => document.querySelector('#wl-count').textContent === '0');
  assert.match(await text(panel, '#wl-segments'), /Nobody has joined yet/);

  // A viewer who only watched at first: Join the waitlist asks for a handle, then joins.
  const dy = await track(openPage(b, 'dy', { width: 1280, height: 800 }));
  await dy.goto(`${hub.base}/live/wl-short`);
  await dy.waitForSelector('#join[open]');
  await dy.click('#join-skip');
  await dy.waitForFunction(() => !document.querySelector('#waitlist').hidden);
  assert.equal(await text(dy, '#next-time'), 'soon', 'no starts_at: it starts soon');
  assert.match(await text(dy, '#wl-pitch'), /8 s before everyone else/);
  await dy.click('#wl-join');
  await dy.waitForSelector('#join[open]');
  assert.equal(await text(dy, '#join-h'), 'Join the waitlist');
  await dy.fill('#handle', 'dy');
  await dy.click('#join-submit');
  await dy.waitForFunction(() => document.querySelector('#wl-status').textContent === 'You’re on the list — #1');
  assert.equal(await text(dy, '#wl-early'), 'Early access: you can claim 8 s before everyone else');
  await shot(dy, 'waitlist-joined-1280x800');

  // The panel finds the new entry on its own (it reads the list every ~10 s).
  await panel.waitForFunction(() => document.querySelector('#wl-count').textContent === '1', null, { timeout: 25000 });
  assert.equal(await panel.$eval('#wl-entries tbody .handle', (c) => c.textContent), 'dy');

  // Tell the maker more: marketing consent with a bad e-mail is refused beside the form, then fixed.
  await dy.click('#wl-more summary');
  await dy.check('#wl-consent');
  assert.equal(await dy.isDisabled('#wl-contact'), false);
  await dy.fill('#wl-contact', 'not an address');
  await dy.click('#wl-save');
  await dy.waitForFunction(() => document.querySelector('#wl-error').textContent.length > 0);
  assert.match(await text(dy, '#wl-error'), /e-mail/);
  assert.equal(await dy.getAttribute('#wl-contact', 'class'), 'invalid');
  await shot(dy, 'waitlist-error-1280x800');
  await dy.fill('#wl-contact', 'dy@example.org');
  await dy.click('#wl-save');
  await dy.waitForFunction(() => document.querySelector('#wl-saved').textContent === 'Saved ✓');
  assert.equal(await text(dy, '#wl-error'), '');
  assert.equal(await text(dy, '#wl-status'), 'You’re on the list — #1', 'an update keeps the place');
  const list = await hub.api('GET', '/drops/wl-short/waitlist');
  assert.deepEqual([list.count, list.consented, list.entries[0].contact, list.entries[0].consent.marketing],
    [1, 1, 'dy@example.org', true]);

  // Another viewer joins through the API with a size and a piece: the panel's next read shows
  // the consent, the contact and the segments (size × item).
  const fay = await hub.api('POST', '/viewers', { handle: 'fay' });
  const joined = await fetch(`${hub.base}/api/v1/drops/wl-short/waitlist`, {
    method: 'POST', headers: { authorization: `Bearer ${fay.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ intent: { size: 'M', items: ['tee'] } }),
  });
  assert.equal(joined.status, 201);
  await panel.waitForFunction(() => document.querySelector('#wl-count').textContent === '2', null, { timeout: 25000 });
  assert.equal(await text(panel, '#wl-consented'), '1');
  assert.deepEqual(await panel.$$eval('#wl-entries tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent))),
    [['1', 'dy', '—', '—', 'yes', 'dy@example.org'], ['2', 'fay', 'M', 'tee', 'no', '—']]);
  const matrix = await panel.$$eval('#wl-segments tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  assert.deepEqual(matrix, [['Size \\ item', 'tee', 'any item'], ['M', '1', '0'], ['any size', '0', '1']]);
  await panel.locator('#waitlist').scrollIntoViewIfNeeded();
  await shot(panel, 'panel-waitlist-segments-1920x1080');

  // Live: dy claims early; ev, who did not join, waits eight seconds, then the Claim button applies.
  const ev = await track(viewer(b, hub, 'wl-short', 'ev'));
  await ev.waitForFunction(() => !document.querySelector('#wl-join').disabled);
  await hub.api('POST', '/drops/wl-short/start', {});
  const fired = await hub.api('POST', '/drops/wl-short/fire', { cue: 1 });
  const publicMs = fired.early_access.find((e) => e.sku === 'tee').public_ms;
  await dy.waitForFunction(() => document.querySelector('#claim-result').dataset.early === 'mine');
  await ev.waitForFunction(() => /^Opens in 0:0[0-8]$/.test(document.querySelector('#claim').textContent));
  assert.match(await text(ev, '#claim-result'), /Opens to everyone in 0:0[0-8]/);
  await shot(ev, 'early-wait-1280x800');
  await dy.click('#claim');
  await dy.waitForFunction(() => document.querySelector('#claim-result').dataset.ok === 'yes');

  await ev.waitForFunction(() => !document.querySelector('#claim').disabled
    && document.querySelector('#claim-result').dataset.early === 'no', null, { timeout: 15000 });
  assert.match(await text(ev, '#claim'), /^Claim · /);
  assert.match(await text(ev, '#claim-result'), /One tap when the piece appears/);
  await until(publicMs + 50); // the page runs on the server clock; the test's clock must agree before it taps
  await ev.click('#claim');
  await ev.waitForFunction(() => document.querySelector('#claim-result').dataset.ok === 'yes');
  const claims = await hub.api('GET', '/drops/wl-short/claims');
  assert.deepEqual(claims.claims.map((c) => c.handle).sort(), ['dy', 'ev']);
  noPageErrors();
  await Promise.all([panel, dy, ev].map((p) => p.context().close()));
});
