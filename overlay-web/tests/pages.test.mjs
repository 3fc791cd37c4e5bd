// The three pages in headless Chromium against the real binary.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Hub, dropSpec, browser, viewer, topLeftPixel, ADMIN, SHOTS } from './harness.mjs';

let hub;
let b;

before(async () => {
  hub = await Hub.start();
  b = await browser();
});

after(async () => {
  await b?.close();
  await hub?.stop();
});

test('a streamer creates and runs a drop in the panel; a viewer claims; the panel and OBS follow', async () => {
  const panelCtx = await b.newContext({ viewport: { width: 1920, height: 1080 } });
  const panel = await panelCtx.newPage();
  await panel.goto(`${hub.base}/panel`);
  await panel.fill('#token', ADMIN);
  await panel.click('#login-form button[type=submit]');
  await panel.click('#new-drop');

  // A script with a wrong SKU is refused, with the server's message beside the field.
  const bad = dropSpec('panel-drop', { revealAt: 4 });
  bad.script.cues[1].sku = 'vase';
  await panel.fill('#create-form input[name=title]', 'Speckled mugs, batch 12');
  await panel.fill('#create-json', JSON.stringify({ inventory: bad.inventory, script: bad.script, id: 'panel-drop' }));
  await panel.click('#create-form button[type=submit]');
  await panel.waitForFunction(() => document.querySelector('#create-error').textContent.includes('unknown sku'));
  assert.match(await panel.textContent('#create-error'), /script\.cues\[1\]\.sku/);

  const good = dropSpec('panel-drop', { revealAt: 4 });
  await panel.fill('#create-json', JSON.stringify({ inventory: good.inventory, script: good.script, id: 'panel-drop' }));
  await panel.click('#create-form button[type=submit]');
  await panel.waitForSelector('#drop:not([hidden])');
  const obsUrl = await panel.inputValue('#obs-url');
  assert.equal(await panel.inputValue('#viewer-url'), `${hub.base}/live/panel-drop`);

  const ana = await viewer(b, hub, 'panel-drop', 'ana');
  const obsCtx = await b.newContext({ viewport: { width: 1920, height: 1080 } });
  const obs = await obsCtx.newPage();
  await obs.goto(obsUrl);

  await panel.click('.controls button[data-action=start]');
  await panel.waitForFunction(() => document.querySelector('#drop-state').textContent === 'live');
  // The reveal arrives at its cue time (4 s of live time), not before.
  assert.equal(await ana.isDisabled('#claim'), true);
  await ana.waitForFunction(() => document.querySelector('#card').dataset.kind === 'reveal', null, { timeout: 20000 });
  assert.match(await ana.textContent('#price'), /Speckled mug · €34\.00|Speckled mug · 34\.00/);
  await obs.waitForFunction(() => document.querySelector('#cue')?.dataset.type === 'reveal');
  assert.match(await obs.textContent('#cue'), /Batch 12 is here/);

  await ana.waitForFunction(() => !document.querySelector('#claim').disabled);
  await ana.click('#claim');
  await ana.waitForFunction(() => document.querySelector('#claim-result').dataset.ok === 'yes');
  const code = await ana.textContent('.claim-code');
  assert.match(code, /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
  await ana.waitForFunction(() => /held for you for \d+:\d\d/.test(document.querySelector('.hold-time').textContent));

  await panel.waitForFunction(() => document.querySelector('#f-held').textContent === '1');
  await obs.waitForFunction(() => document.querySelector('.stock-row[data-sku=mug] .stock-left')?.textContent === '4 left');
  const claims = await hub.api('GET', '/drops/panel-drop/claims');
  assert.deepEqual(claims.claims.map((c) => c.code), [code]);

  await panel.screenshot({ path: join(SHOTS, 'panel-1920x1080.png'), fullPage: true });
  await ana.setViewportSize({ width: 1920, height: 1080 });
  await ana.screenshot({ path: join(SHOTS, 'live-1920x1080.png') });
  await ana.setViewportSize({ width: 390, height: 844 });
  await ana.screenshot({ path: join(SHOTS, 'live-390x844.png'), fullPage: true });
  await panel.setViewportSize({ width: 390, height: 844 });
  await panel.screenshot({ path: join(SHOTS, 'panel-390x844.png'), fullPage: true });
  await obs.screenshot({ path: join(SHOTS, 'obs-1920x1080.png'), omitBackground: true });
  await obs.setViewportSize({ width: 390, height: 844 });
  await obs.screenshot({ path: join(SHOTS, 'obs-390x844.png'), omitBackground: true });
  await Promise.all([panelCtx.close(), obsCtx.close(), ana.context().close()]);
});

test('two viewers race for the last unit: one code, one sold out', async () => {
  await hub.api('POST', '/drops', dropSpec('last-one', { stock: 1 }));
  const [a, c] = await Promise.all([viewer(b, hub, 'last-one', 'ana'), viewer(b, hub, 'last-one', 'bo')]);
  await hub.api('POST', '/drops/last-one/start', {});
  await hub.api('POST', '/drops/last-one/fire', { cue: 1 });
  await Promise.all([a, c].map((p) => p.waitForFunction(() => !document.querySelector('#claim').disabled)));
  await Promise.all([a.click('#claim'), c.click('#claim')]);
  const outcomes = await Promise.all([a, c].map(async (p) => {
    await p.waitForFunction(() => document.querySelector('#claim-result').dataset.ok);
    return p.evaluate(() => ({ ok: document.querySelector('#claim-result').dataset.ok,
      text: document.querySelector('#claim-result').textContent }));
  }));
  assert.deepEqual(outcomes.map((o) => o.ok).sort(), ['no', 'yes']);
  assert.match(outcomes.find((o) => o.ok === 'no').text, /Sold out/);
  const claims = await hub.api('GET', '/drops/last-one/claims');
  assert.equal(claims.claims.length, 1);
  await Promise.all([a, c].map((p) => p.context().close()));
});

test('the OBS page is transparent, display-only, and needs its key', async () => {
  const created = await hub.api('POST', '/drops', dropSpec('obs-check'));
  const wrong = await fetch(`${hub.base}/obs/obs-check?key=nope`);
  assert.equal(wrong.status, 403);
  assert.equal((await fetch(`${hub.base}/obs/obs-check`)).status, 403);
  const denied = await b.newPage({ viewport: { width: 1920, height: 1080 } });
  const said = [];
  denied.on('console', (m) => said.push(m.text()));
  const deniedResp = await denied.goto(`${hub.base}/obs/obs-check?key=wrong`);
  assert.equal(deniedResp.status(), 403);
  assert.equal((await denied.evaluate(() => document.body.innerText)).trim(), '', 'nothing shows on stream');
  assert.equal(topLeftPixel(await denied.screenshot({ omitBackground: true }))[3], 0);
  await denied.waitForFunction(() => true);
  assert.ok(said.some((t) => t.includes('wrong or missing ?key=')), `console said: ${said}`);
  await denied.close();

  const page = await b.newPage({ viewport: { width: 1920, height: 1080 } });
  const resp = await page.goto(`${hub.base}/obs/obs-check?key=${encodeURIComponent(created.obs_key)}`);
  assert.match(resp.headers()['cache-control'], /no-store/);
  await hub.api('POST', '/drops/obs-check/start', {});
  await page.waitForFunction(() => document.querySelector('#cue')?.dataset.type === 'intro');
  const bg = await page.evaluate(() => [getComputedStyle(document.documentElement).backgroundColor, getComputedStyle(document.body).backgroundColor]);
  assert.deepEqual(bg, ['rgba(0, 0, 0, 0)', 'rgba(0, 0, 0, 0)']);
  const png = await page.screenshot({ omitBackground: true });
  assert.equal(topLeftPixel(png)[3], 0, 'the corner pixel is fully transparent');
  const interactive = await page.evaluate(() => document.querySelectorAll('button, input, select, textarea, a[href], [tabindex], dialog').length);
  assert.equal(interactive, 0);
  const scroll = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]);
  assert.deepEqual(scroll, [1920, 1080]);
  await page.close();
});

test('a viewer page reconnects by itself after a server restart and shows the current state', async () => {
  await hub.api('POST', '/drops', dropSpec('restart-page'));
  await hub.api('POST', '/drops/restart-page/start', {});
  const page = await viewer(b, hub, 'restart-page', 'cy');
  await page.waitForFunction(() => document.querySelector('#card').dataset.kind === 'intro');
  await hub.restart();
  await page.waitForFunction(() => document.body.dataset.connected === 'no');
  await page.waitForFunction(() => document.body.dataset.connected === 'yes', null, { timeout: 40000 });
  await hub.api('POST', '/drops/restart-page/fire', { cue: 1 });
  await page.waitForFunction(() => document.querySelector('#card').dataset.kind === 'reveal');
  await page.waitForFunction(() => !document.querySelector('#claim').disabled);
  await page.context().close();
});
