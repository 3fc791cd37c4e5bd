// Collectible passes on the live page, in headless Chromium against the real binary: a
// maker's rule earns a viewer a pass by attendance; the viewer's page reads its own passes
// (`GET /api/v1/me/passes`) and shows them under the board; the box stays hidden without one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Hub, dropSpec, browser, viewer, SHOTS } from './harness.mjs';

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

test('a viewer sees the pass its attendance earned, under the board; without one the box is hidden', async () => {
  await hub.api('POST', '/passes/rules', { id: 'kiln-regular', name: 'Kiln regular', earned_by: { attendance: 2 } });
  await hub.api('POST', '/drops', dropSpec('first-firing'));
  await hub.api('POST', '/drops', dropSpec('second-firing'));
  // One drop attended: no pass yet, no box.
  const ana = await viewer(b, hub, 'first-firing', 'ana');
  const me = await ana.evaluate(() => JSON.parse(localStorage.getItem('dropwire.viewer')));
  assert.equal(await ana.isHidden('#passes'), true, 'no pass, no box');
  // The second drop earns it: the page shows it (read on connect, and again shortly).
  await ana.goto(`${hub.base}/live/second-firing`);
  await ana.waitForFunction(() => document.querySelector('#passes:not([hidden]) [data-rule="kiln-regular"]'),
    null, { timeout: 15000 });
  assert.match(await ana.textContent('#pass-list'), /kiln regular\s*by default/i);
  assert.equal(await ana.textContent('#passes-count'), '1');
  const theirs = await hub.api('GET', `/viewers/${me.viewer_id}/passes`);
  assert.deepEqual(theirs.passes.map((p) => [p.rule, p.viewer_id]), [['kiln-regular', me.viewer_id]]);
  assert.equal(await ana.getAttribute('#pass-list li', 'data-pass'), theirs.passes[0].id);
  await ana.screenshot({ path: join(SHOTS, 'live-passes-1280x800.png') });
  assert.deepEqual(ana.errors, [], 'no uncaught errors in the page');
});
