// The public launch calendar (/calendar) in headless Chromium against the real binary: it
// lists a scheduled drop with its time in the viewer's time zone and a link to its
// waitlist page, leaves out drops with no announced start, offers a webcal:// link to the
// feed, and loads nothing from elsewhere. With `?coop=<id>` it shows that co-op's calendar,
// marks the drops that collide, and links the co-op's feed.
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

test('?coop= shows a co-op calendar with its overlaps and its feed', async () => {
  // cal-mugs (from the test above) starts in 3 days for an hour; cal-jugs half an hour later.
  const { drops } = await hub.api('GET', '/calendar', undefined, { admin: false });
  const mugs = drops.find((d) => d.id === 'cal-mugs');
  assert.ok(mugs, 'the first test made cal-mugs');
  await hub.api('POST', '/drops', {
    ...dropSpec('cal-jugs'), title: 'Milk jugs', starts_at: new Date(mugs.starts_ms + 1_800_000).toISOString(),
  });
  await hub.api('POST', '/coops', { id: 'river', name: 'River studios', makers: ['default'] });
  await hub.api('POST', '/makers', { id: 'north', name: 'North' });
  await hub.api('POST', '/coops', { id: 'hill', name: 'Hill makers', makers: ['north'] });

  const ctx = await b.newContext({ viewport: { width: 1000, height: 700 }, locale: 'en-GB' });
  const page = watch(await ctx.newPage(), 'calendar-coop');
  const elsewhere = [];
  page.on('request', (req) => { if (!req.url().startsWith(hub.base)) elsewhere.push(req.url()); });
  await page.goto(`${hub.base}/calendar?coop=river`);
  await page.waitForFunction(() => document.body.dataset.loaded === 'yes');
  assert.equal(await page.locator('#coop').textContent(), 'River studios');
  assert.equal(await page.title(), 'River studios · dropwire launch calendar');
  const items = page.locator('#drops li.drop');
  assert.deepEqual(await items.evaluateAll((els) => els.map((e) => e.dataset.id)), ['cal-mugs', 'cal-jugs']);
  assert.deepEqual(await page.locator('#drops li.drop.overlap').count(), 2);
  assert.equal(await items.nth(0).locator('.clash').textContent(), 'Overlaps Milk jugs');
  assert.equal(await items.nth(1).locator('.clash').textContent(), 'Overlaps Speckled mugs, batch 12');
  const port = new URL(hub.base).port;
  assert.equal(await page.locator('#subscribe').getAttribute('href'), `webcal://127.0.0.1:${port}/coops/river/calendar.ics`);
  const download = await page.locator('#download').getAttribute('href');
  assert.equal(download, '/coops/river/calendar.ics');
  const feed = await fetch(`${hub.base}${download}`);
  assert.equal(feed.status, 200);
  assert.equal(feed.headers.get('content-type'), 'text/calendar; charset=utf-8');
  assert.match(await feed.text(), /X-WR-CALNAME:River studios launches/);
  await page.screenshot({ path: join(SHOTS, 'calendar-coop.png') });

  // A co-op whose makers announced nothing; one that does not exist; a malformed id.
  await page.goto(`${hub.base}/calendar?coop=hill`);
  await page.waitForFunction(() => document.body.dataset.loaded === 'yes');
  assert.equal(await page.locator('#drops li.drop').count(), 0);
  assert.match(await page.locator('#status').textContent(), /No drops announced yet/);
  for (const [coop, message] of [['nope', 'there is no co-op nope'], ['Not%20ok', 'the co-op id is not valid']]) {
    await page.goto(`${hub.base}/calendar?coop=${coop}`);
    await page.waitForFunction(() => document.querySelector('#status').classList.contains('error'));
    assert.equal(await page.locator('#status').textContent(), `Cannot load the calendar: ${message}`);
  }
  assert.deepEqual(elsewhere, []);
  assert.deepEqual(page.errors, []);
  await ctx.close();
});
