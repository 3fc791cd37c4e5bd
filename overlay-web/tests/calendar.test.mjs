// The public launch calendar (/calendar) in headless Chromium against the real binary: it
// lists a scheduled drop with its time in the viewer's time zone and a link to its
// waitlist page, leaves out drops with no announced start, offers a webcal:// link to the
// feed, and loads nothing from elsewhere.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Hub, browser, dropSpec, SHOTS, watch } from './harness.mjs';

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

test('the calendar lists a scheduled drop in local time, linking to its waitlist', async () => {
  const starts = new Date(Date.now() + 3 * 86_400_000);
  starts.setUTCSeconds(0, 0);
  await hub.api('POST', '/drops', {
    ...dropSpec('cal-mugs'), title: 'Speckled mugs, batch 12', starts_at: starts.toISOString(), auto_start: true,
  });
  await hub.api('POST', '/drops', dropSpec('cal-unannounced'));

  // A viewer in Tokyo: the page shows Tokyo time.
  const ctx = await b.newContext({ viewport: { width: 1000, height: 700 }, timezoneId: 'Asia/Tokyo', locale: 'en-GB' });
  const page = watch(await ctx.newPage(), 'calendar');
  const elsewhere = [];
  page.on('request', (req) => { if (!req.url().startsWith(hub.base)) elsewhere.push(req.url()); });
  await page.goto(`${hub.base}/calendar`);
  await page.waitForFunction(() => document.body.dataset.loaded === 'yes');

  const items = page.locator('#drops li.drop');
  assert.equal(await items.count(), 1, 'only the drop with an announced start');
  const item = items.first();
  assert.equal(await item.getAttribute('data-id'), 'cal-mugs');
  assert.equal(await item.locator('h2').textContent(), 'Speckled mugs, batch 12');
  const tokyo = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', timeZone: 'Asia/Tokyo' }).format(starts);
  assert.equal(await item.locator('.time').textContent(), tokyo);
  assert.equal(await page.locator('#zone').textContent(), 'Asia/Tokyo');

  const link = item.locator('a.go');
  assert.equal(await link.textContent(), 'Join the waitlist');
  assert.equal(await link.getAttribute('href'), '/live/cal-mugs');
  const port = new URL(hub.base).port;
  assert.equal(await page.locator('#subscribe').getAttribute('href'), `webcal://127.0.0.1:${port}/calendar.ics`);
  await page.screenshot({ path: join(SHOTS, 'calendar.png') });

  // The link opens the drop's page, where the waitlist is.
  await link.click();
  await page.waitForURL(`${hub.base}/live/cal-mugs`);
  assert.deepEqual(elsewhere, []);
  assert.deepEqual(page.errors, []);
  await ctx.close();
});
