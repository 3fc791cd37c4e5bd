// The three pages in headless Chromium against the real binary: the panel drives a drop,
// viewers claim, the OBS source follows; a race for the last unit; the OBS source's
// transparency and key; a server restart under an open page. Screenshots land in
// test-artifacts/screenshots/ for a person to look at.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Hub, dropSpec, browser, viewer, openPage, topLeftPixel, ADMIN, SHOTS } from './harness.mjs';

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

/** Opens a page and remembers it, so its uncaught errors fail the test. */
async function track(promise) {
  const page = await promise;
  pages.push(page);
  return page;
}

function noPageErrors() {
  const errors = pages.splice(0).flatMap((p) => p.errors);
  assert.deepEqual(errors, [], 'no uncaught errors in the pages');
}

const shot = (page, name, opts = {}) => page.screenshot({ path: join(SHOTS, `${name}.png`), ...opts });
const box = async (page, sel) => {
  const r = await page.locator(sel).boundingBox();
  return [r.x, r.y, r.width, r.height].map(Math.round);
};

/** A ten-minute script whose reveal comes 3 s after Go live. */
function showSpec(id, stock = 5) {
  return dropSpec(id, {
    stock, duration: 600, cues: [
      { at_s: 0, type: 'intro', title: 'Welcome to the studio' },
      { at_s: 3, type: 'reveal', sku: 'mug', title: 'Batch 12 is here' },
      { at_s: 60, type: 'cta', title: 'Tap Claim while they last' },
      { at_s: 240, type: 'flash_coupon', code: 'KILN10', percent_off: 10, ttl_s: 120, title: '10% off for two minutes' },
      { at_s: 540, type: 'soft_close', title: 'Last call' },
      { at_s: 600, type: 'close' },
    ],
  });
}

test('a streamer creates and runs a drop in the panel; a viewer claims; the panel and OBS follow', async () => {
  const panel = await track(openPage(b, 'panel', { width: 1920, height: 1080 }));
  await panel.goto(`${hub.base}/panel`);
  await panel.fill('#token', ADMIN);
  await panel.press('#token', 'Enter');
  await panel.click('#new-drop');
  await panel.waitForSelector('#create:not([hidden]) #inv-rows .row-item');

  // The form, with a reveal naming a SKU that does not exist: the server's message sits beside that field.
  await panel.fill('[data-field="script.cues[2].sku"]', 'vase');
  await panel.click('#create-form button[type=submit]');
  const skuError = panel.locator('[data-field="script.cues[2].sku"] + .field-error');
  await skuError.waitFor();
  assert.match(await skuError.textContent(), /unknown sku/i);
  assert.equal(await panel.getAttribute('[data-field="script.cues[2].sku"]', 'class'), 'invalid');
  assert.match(await panel.textContent('#create-error'), /script\.cues\[2\]\.sku/);

  // A bad number in pasted JSON names its field too.
  const spec = showSpec('panel-drop');
  await panel.click('#tab-json');
  await panel.fill('#create-json', JSON.stringify({ ...spec, hold_s: 1 }));
  await panel.click('#json-form button[type=submit]');
  await panel.waitForFunction(() => document.querySelector('#json-error').textContent.includes('hold_s'));

  // The good script, pasted as JSON.
  await panel.fill('#create-json', JSON.stringify(spec, null, 2));
  await panel.click('#json-form button[type=submit]');
  await panel.waitForSelector('#drop:not([hidden])');
  await panel.waitForFunction(() => document.querySelector('#drop-state').textContent === 'scheduled');
  assert.equal(await panel.locator('#timeline .mark').count(), spec.script.cues.length, 'every cue is on the timeline bar');
  assert.equal(await panel.inputValue('#viewer-url'), `${hub.base}/live/panel-drop`);
  const obsUrl = await panel.inputValue('#obs-url');
  assert.match(obsUrl, new RegExp(`^${hub.base}/obs/panel-drop\\?key=.+`));

  const ana = await track(viewer(b, hub, 'panel-drop', 'ana', { width: 390, height: 844 }));
  const obs = await track(openPage(b, 'obs', { width: 1920, height: 1080 }));
  await obs.goto(obsUrl);
  const claimBox = await box(ana, '#claim');

  await panel.click('.controls button[data-action=start]');
  await panel.waitForFunction(() => document.querySelector('#drop-state').textContent === 'live');
  await ana.waitForFunction(() => document.querySelector('#card').dataset.kind === 'intro');
  assert.equal(await ana.isDisabled('#claim'), true, 'nothing to claim before the reveal');
  await obs.waitForFunction(() => document.querySelector('.cue')?.dataset.type === 'intro');

  // The reveal arrives at its cue time on the viewer page and on the OBS source.
  await ana.waitForFunction(() => document.querySelector('#card').dataset.kind === 'reveal', null, { timeout: 20000 });
  assert.equal(await ana.textContent('#cue-title'), 'Batch 12 is here');
  assert.equal(await ana.textContent('#item-name'), 'Speckled mug');
  assert.match(await ana.textContent('#price'), /^(€34\.00|34\.00 €|EUR 34\.00)$/);
  assert.equal(await ana.textContent('#card-stock'), '5 of 5 left');
  await obs.waitForFunction(() => document.querySelector('.cue.enter')?.dataset.type === 'reveal');
  assert.match(await obs.textContent('.cue.enter'), /Batch 12 is here/);
  assert.deepEqual(await box(ana, '#claim'), claimBox, 'the Claim button does not move when a cue arrives');

  await ana.waitForFunction(() => !document.querySelector('#claim').disabled);
  await ana.click('#claim');
  await ana.waitForFunction(() => document.querySelector('#claim-result').dataset.ok === 'yes');
  const code = await ana.textContent('.claim-code');
  assert.match(code, /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
  await ana.waitForFunction(() => /Held for you for 1[45]:\d\d/.test(document.querySelector('.hold-time').textContent));
  assert.equal(await ana.textContent('#claim'), 'It’s yours ✓');
  assert.deepEqual(await box(ana, '#claim'), claimBox, 'the Claim button does not move when the result arrives');

  // The panel's figures and the OBS stock follow without a reload.
  await panel.waitForFunction(() => document.querySelector('#f-held').textContent === '1');
  await panel.waitForFunction((c) => document.querySelector('#f-claims').textContent.includes(c), code);
  await panel.waitForFunction(() => document.querySelector('#f-stock [data-sku=mug] .stock-left')?.textContent === '4 / 5');
  await obs.waitForFunction(() => document.querySelector('.stock-row[data-sku=mug] .stock-left')?.textContent === '4 left');
  await obs.waitForFunction(() => document.querySelector('#board-list')?.textContent.includes('ana'));
  const claims = await hub.api('GET', '/drops/panel-drop/claims');
  assert.deepEqual(claims.claims.map((c) => [c.code, c.handle, c.state]), [[code, 'ana', 'held']]);

  // An ad-hoc flash coupon from the panel reaches the viewer (with its copy button) and the OBS source.
  await panel.fill('#c-code', 'STUDIO15');
  await panel.fill('#c-off', '15');
  await panel.click('#coupon-form button[type=submit]');
  await ana.waitForFunction(() => document.querySelector('#coupon-code').textContent === 'STUDIO15');
  assert.equal(await ana.isVisible('#coupon-copy'), true);
  await ana.waitForFunction(() => /ends in [12]:\d\d/.test(document.querySelector('#coupon-time').textContent));
  await obs.waitForFunction(() => document.querySelector('.cue.enter')?.dataset.type === 'flash_coupon');
  assert.match(await obs.textContent('.cue.enter'), /STUDIO15/);

  // A reload keeps the viewer's token and hold: no join prompt, the same code.
  await ana.reload();
  await ana.waitForFunction(() => document.body.dataset.connected === 'yes');
  await ana.waitForFunction((c) => document.querySelector('.claim-code')?.textContent === c, code);
  assert.equal(await ana.evaluate(() => document.querySelector('#join').open), false);

  // Screenshots for a person: 1920×1080 and 390×844 of each page.
  await obs.waitForTimeout(900); // let the entrance animation finish for the picture
  await shot(obs, 'obs-1920x1080', { omitBackground: true });
  await obs.setViewportSize({ width: 390, height: 844 });
  await shot(obs, 'obs-390x844', { omitBackground: true });
  await shot(ana, 'live-390x844', { fullPage: true });
  await ana.setViewportSize({ width: 1920, height: 1080 });
  await shot(ana, 'live-1920x1080');
  await shot(panel, 'panel-1920x1080', { fullPage: true });
  await panel.setViewportSize({ width: 390, height: 844 });
  await shot(panel, 'panel-390x844', { fullPage: true });
  await panel.setViewportSize({ width: 1920, height: 1080 });
  await panel.click('#new-drop');
  await panel.click('#tab-form');
  await panel.fill('[data-field="script.cues[2].sku"]', 'vase');
  await panel.click('#create-form button[type=submit]');
  await skuError.waitFor();
  await shot(panel, 'panel-create-1920x1080', { fullPage: true });
  noPageErrors();
  await Promise.all([panel, ana, obs].map((p) => p.context().close()));
});

test('the panel follows its drop on the WebSocket as the maker: figures move after a claim with the polled routes answering nothing', async () => {
  await hub.api('POST', '/drops', showSpec('panel-live'));
  await hub.api('POST', '/drops/panel-live/start', {});
  const panel = await track(openPage(b, 'panel-live', { width: 1440, height: 900 }));
  await panel.addInitScript((t) => localStorage.setItem('dropwire.admin', t), ADMIN);
  const requests = [];
  panel.on('request', (r) => requests.push(new URL(r.url()).pathname));
  const hellos = [];
  panel.on('websocket', (ws) => ws.on('framesent', (f) => { if (String(f.payload).includes('"hello"')) hellos.push(JSON.parse(f.payload)); }));
  await panel.goto(`${hub.base}/panel#drop=panel-live`);
  await panel.waitForFunction(() => document.querySelector('#drop-state').textContent === 'live');
  // The reveal fires 3 s in: the cue list learns it from the socket.
  await panel.waitForFunction(() => document.querySelector('.cue-item[data-index="1"]')?.classList.contains('fired'), null, { timeout: 20000 });
  assert.deepEqual(hellos, [{ type: 'hello', admin: ADMIN }], 'the panel says hello as the maker');
  await panel.waitForFunction(() => document.querySelector('#f-stock [data-sku=mug] .stock-left')?.textContent === '5 / 5');
  assert.equal(await panel.textContent('#f-now'), '0', 'the panel is no viewer');
  assert.equal((await hub.api('GET', '/drops/panel-live/stats')).viewers.now, 0);

  // Idle, the panel reads nothing every second any more (it read the drop and the stats
  // once a second before): at most the one slow read of the stats, every 10 s.
  const count = (path, from) => requests.slice(from).filter((p) => p === path).length;
  let mark = requests.length;
  await panel.waitForTimeout(4000);
  assert.equal(count('/api/v1/drops/panel-live', mark), 0, `idle requests: ${requests.slice(mark)}`);
  assert.ok(count('/api/v1/drops/panel-live/stats', mark) <= 1, `idle requests: ${requests.slice(mark)}`);

  // The drop and its figures' routes now answer nothing: what moves comes through the socket.
  const polled = (url) => /^\/api\/v1\/drops\/panel-live(\/stats|\/claims)?$/.test(url.pathname);
  await panel.route(polled, (route) => route.abort());
  mark = requests.length;
  const elapsed = await panel.textContent('#drop-elapsed');
  const ana = await track(viewer(b, hub, 'panel-live', 'ana'));
  await panel.waitForFunction(() => document.querySelector('#f-now').textContent === '1');
  await ana.waitForFunction(() => !document.querySelector('#claim').disabled);
  await ana.click('#claim');
  await ana.waitForFunction(() => document.querySelector('#claim-result').dataset.ok === 'yes');
  const code = await ana.textContent('.claim-code');
  await panel.waitForFunction(() => document.querySelector('#f-stock [data-sku=mug] .stock-left')?.textContent === '4 / 5');
  await panel.waitForFunction(() => document.querySelector('#f-stock [data-sku=mug]').className === 'plenty');
  assert.notEqual(await panel.textContent('#drop-elapsed'), elapsed, 'the timeline runs on');
  assert.equal(count('/api/v1/drops/panel-live', mark), 0, 'the drop itself is never polled');

  // What no broadcast carries (held claims, the latest claims) is read after the claim's
  // broadcasts, or by the slow read: with the routes back, it follows.
  await panel.unroute(polled);
  await panel.waitForFunction(() => document.querySelector('#f-held').textContent === '1', null, { timeout: 20000 });
  await panel.waitForFunction((c) => document.querySelector('#f-claims').textContent.includes(c), code);
  const stats = await hub.api('GET', '/drops/panel-live/stats');
  await panel.waitForFunction((u) => document.querySelector('#f-unique').textContent === u, String(stats.viewers.unique));

  // The maker closes its page: the viewer count does not move.
  await panel.context().close();
  assert.equal((await hub.api('GET', '/drops/panel-live/stats')).viewers.now, 1);
  noPageErrors();
  await ana.context().close();
});

test('two viewers race for the last unit: one code, one "sold out"', async () => {
  await hub.api('POST', '/drops', dropSpec('last-one', { stock: 1 }));
  const [ana, bo] = await Promise.all([track(viewer(b, hub, 'last-one', 'ana')), track(viewer(b, hub, 'last-one', 'bo'))]);
  await hub.api('POST', '/drops/last-one/start', {});
  await hub.api('POST', '/drops/last-one/fire', { cue: 1 });
  await Promise.all([ana, bo].map((p) => p.waitForFunction(() => !document.querySelector('#claim').disabled)));
  // Both press Claim at the same instant (a timer in each page, one browser clock), so both requests are in flight.
  const at = Date.now() + 400;
  await Promise.all([ana, bo].map((p) => p.evaluate((t) => setTimeout(() => document.querySelector('#claim').click(), t - Date.now()), at)));
  const outcomes = await Promise.all([ana, bo].map(async (p) => {
    await p.waitForFunction(() => document.querySelector('#claim-result').dataset.ok);
    return p.evaluate(() => ({
      ok: document.querySelector('#claim-result').dataset.ok,
      reason: document.querySelector('#claim-result .reason')?.dataset.reason,
      text: document.querySelector('#claim-result').textContent,
      button: document.querySelector('#claim').textContent,
      code: document.querySelector('.claim-code')?.textContent,
    }));
  }));
  assert.deepEqual(outcomes.map((o) => o.ok).sort(), ["no", "yes"], JSON.stringify(outcomes));
  const loser = outcomes.find((o) => o.ok === 'no');
  assert.equal(loser.reason, 'sold_out');
  assert.match(loser.text, /Sold out/);
  assert.equal(loser.button, 'Sold out');
  const claims = await hub.api('GET', '/drops/last-one/claims');
  assert.deepEqual(claims.claims.map((c) => c.code), [outcomes.find((o) => o.ok === 'yes').code]);
  // Both pages end showing the SKU sold out.
  await Promise.all([ana, bo].map((p) => p.waitForFunction(() => document.querySelector('.stock-row[data-sku=mug]')?.classList.contains('sold-out'))));
  await shot(outcomes[0].ok === 'no' ? ana : bo, 'live-sold-out-1280x800');
  noPageErrors();
  await Promise.all([ana, bo].map((p) => p.context().close()));
});

test('a viewer taps "I\'m here" on an open quest and sees its points on the page and the board', async () => {
  await hub.api('POST', '/drops', dropSpec('quest-here', {
    cues: [
      { at_s: 0, type: 'intro', title: 'Welcome to the studio' },
      { at_s: 1000, type: 'quest', quest: 'be_there', points: 40, ttl_s: 600, title: 'Say hi to the kiln' },
      { at_s: 3600, type: 'close' },
    ],
  }));
  const ana = await track(viewer(b, hub, 'quest-here', 'ana'));
  assert.equal(await ana.isHidden('#quests'), true, 'no quest open before it fires');
  await hub.api('POST', '/drops/quest-here/start', {});
  await hub.api('POST', '/drops/quest-here/fire', { cue: 1 });
  await ana.waitForFunction(() => {
    const b = document.querySelector('#quests:not([hidden]) [data-quest="s1"] .quest-here');
    return b && !b.disabled;
  });
  assert.match(await ana.textContent('[data-quest="s1"]'), /Say hi to the kiln.*\+40 pts/);
  await ana.click('[data-quest="s1"] .quest-here');
  await ana.waitForFunction(() => document.querySelector('[data-quest="s1"] .quest-done')?.textContent === '+40 pts ✓');
  await ana.waitForFunction(() => document.querySelector('#my-points').dataset.points === '40' && !document.querySelector('#my-points').hidden);
  assert.equal(await ana.textContent('#my-points'), 'Your points: 40');
  // The leaderboard broadcast carries them too.
  await ana.waitForFunction(() => document.querySelector('#board li.mine .pts')?.textContent === '40 pts');
  // The award is a ledger fact (written off the hot path: poll until it is there).
  let facts = [];
  for (let i = 0; i < 300 && facts.length === 0; i += 1) {
    facts = (await hub.api('GET', '/ledger/facts?drop=quest-here&kind=quest.awarded')).facts;
    if (facts.length === 0) await new Promise((ok) => setTimeout(ok, 100));
  }
  assert.deepEqual(facts.map((f) => [f.kind, f.detail.points]), [['quest.awarded', 40]]);
  await shot(ana, 'live-quest-1280x800');
  noPageErrors();
  await ana.context().close();
});

test('the OBS page is transparent, display-only, and needs its key', async () => {
  const created = await hub.api('POST', '/drops', showSpec('obs-check'));
  assert.equal((await fetch(`${hub.base}/obs/obs-check?key=nope`)).status, 403);
  assert.equal((await fetch(`${hub.base}/obs/obs-check`)).status, 403);
  assert.equal((await fetch(`${hub.base}/obs/no-such-drop?key=${created.obs_key}`)).status, 403);

  // A wrong key: nothing on stream, one line in the console.
  const denied = await track(openPage(b, 'obs-denied', { width: 1920, height: 1080 }));
  const said = [];
  denied.on('console', (m) => said.push(m.text()));
  const deniedResp = await denied.goto(`${hub.base}/obs/obs-check?key=wrong`);
  assert.equal(deniedResp.status(), 403);
  assert.equal((await denied.evaluate(() => document.body.innerText)).trim(), '', 'nothing shows on stream');
  assert.equal(topLeftPixel(await denied.screenshot({ omitBackground: true }))[3], 0);
  assert.ok(said.some((t) => t.includes('wrong or missing ?key=')), `console said: ${said}`);

  const page = await track(openPage(b, 'obs', { width: 1920, height: 1080 }));
  const resp = await page.goto(`${hub.base}/obs/obs-check?key=${encodeURIComponent(created.obs_key)}`);
  assert.match(resp.headers()['cache-control'], /no-store/, 'OBS never caches stale HTML');
  await hub.api('POST', '/drops/obs-check/start', {});
  await page.waitForFunction(() => document.querySelector('.cue')?.dataset.type === 'intro');
  await page.waitForFunction(() => document.querySelector('.cue')?.dataset.type === 'reveal', null, { timeout: 20000 });
  const bg = await page.evaluate(() => [getComputedStyle(document.documentElement).backgroundColor, getComputedStyle(document.body).backgroundColor]);
  assert.deepEqual(bg, ['rgba(0, 0, 0, 0)', 'rgba(0, 0, 0, 0)']);
  const png = await page.screenshot({ omitBackground: true });
  assert.equal(topLeftPixel(png)[3], 0, 'the corner pixel is fully transparent');
  const interactive = await page.evaluate(() => document.querySelectorAll(
    'button, input, select, textarea, a[href], [tabindex], [contenteditable], dialog, details, [onclick]').length);
  assert.equal(interactive, 0, 'no interactive element');
  const scroll = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight,
    getComputedStyle(document.documentElement).overflow, getComputedStyle(document.body).overflow]);
  assert.deepEqual(scroll, [1920, 1080, 'hidden', 'hidden'], 'no scrollbars');

  // The CSS and JS come with their content types, compressed, with ETags.
  for (const [path, type] of [['/assets/css/obs.css', /^text\/css/], ['/assets/js/obs.js', /javascript/]]) {
    const r = await fetch(`${hub.base}${path}`, { headers: { 'accept-encoding': 'gzip, br' } });
    assert.match(r.headers.get('content-type'), type, path);
    assert.ok(r.headers.get('etag'), `${path} has an ETag`);
    assert.match(r.headers.get('content-encoding') || '', /gzip|br/, `${path} is compressed`);
    const again = await fetch(`${hub.base}${path}`, { headers: { 'if-none-match': r.headers.get('etag') } });
    assert.equal(again.status, 304);
  }
  noPageErrors();
  await Promise.all([denied, page].map((p) => p.context().close()));
});

test('a viewer page reconnects by itself after a server restart and shows the current state', async () => {
  const created = await hub.api('POST', '/drops', showSpec('restart-page'));
  const page = await track(viewer(b, hub, 'restart-page', 'cy'));
  const started = await hub.api('POST', '/drops/restart-page/start', {});
  await page.waitForFunction(() => document.querySelector('#card').dataset.kind === 'intro');
  assert.ok(created.obs_key);

  // Down across the reveal: it fires (on the timeline) while nobody is connected.
  await hub.stop();
  await page.waitForFunction(() => document.body.dataset.connected === 'no');
  assert.equal(await page.isDisabled('#claim'), true);
  const revealAt = started.started_ms + 3000;
  while (Date.now() < revealAt + 300) await new Promise((ok) => setTimeout(ok, 100));
  await hub.spawn();

  await page.waitForFunction(() => document.body.dataset.connected === 'yes', null, { timeout: 40000 });
  await page.waitForFunction(() => document.querySelector('#card').dataset.kind === 'reveal');
  await page.waitForFunction(() => !document.querySelector('#claim').disabled);
  // Claimed with the keyboard alone: Tab reaches the button, Enter presses it.
  for (let i = 0; i < 12 && (await page.evaluate(() => document.activeElement?.id)) !== 'claim'; i += 1) await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'claim', 'Tab reaches the Claim button');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('#claim-result').dataset.ok === 'yes');
  noPageErrors();
  await page.context().close();
});
