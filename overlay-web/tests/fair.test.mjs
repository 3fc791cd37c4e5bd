// Fair start on the live page in headless Chromium against the real binary: a claim in the
// SKU's fair-start window shows "Entered the draw — result at …" on the item, then the
// drawn result as for any claim (the hub sends it at the draw's time, unasked).
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

test('a claim in the fair-start window is entered in the draw, then granted at the draw', async () => {
  const spec = dropSpec('fair-page', { stock: 1 });
  spec.inventory[0].fair_start_ms = 4000;
  await hub.api('POST', '/drops', spec);
  const ana = await viewer(b, hub, 'fair-page', 'ana');
  await hub.api('POST', '/drops/fair-page/start', {});
  await hub.api('POST', '/drops/fair-page/fire', { cue: 1 });
  await ana.waitForFunction(() => !document.querySelector('#claim').disabled);
  await ana.click('#claim');
  await ana.waitForFunction(() => document.querySelector('#claim-result').dataset.ok === 'draw');
  const entered = await ana.textContent('#claim-result');
  assert.match(entered, /Entered the draw — result at \d\d:\d\d:\d\d/);
  assert.equal(await ana.textContent('#claim'), 'In the draw…');
  await ana.screenshot({ path: join(SHOTS, 'fair-entered.png') });
  // Nothing is granted before the draw.
  assert.deepEqual((await hub.api('GET', '/drops/fair-page/claims')).claims, []);
  // At the draw's time the result arrives unasked: the only entrant wins the one mug.
  await ana.waitForFunction(() => document.querySelector('#claim-result').dataset.ok === 'yes', null, { timeout: 20000 });
  const code = await ana.textContent('.claim-code');
  assert.equal(await ana.textContent('#claim'), 'It’s yours ✓');
  const claims = await hub.api('GET', '/drops/fair-page/claims');
  assert.deepEqual(claims.claims.map((c) => [c.code, c.handle, c.rank]), [[code, 'ana', 0]]);
  await ana.screenshot({ path: join(SHOTS, 'fair-granted.png') });
  assert.deepEqual(ana.errors, [], 'no uncaught errors in the page');
});
