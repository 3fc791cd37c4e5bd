// Webhooks and the follow-up confirmation in headless Chromium against the real binary (run
// with --webhook-allow-private true, so a receiver on 127.0.0.1 is allowed, and a short
// retry schedule, 0,1,1 s). A receiver in this process (node:http) answers the hub; the
// Standard Webhooks library verifies what it got. Screenshots land in /tmp/wh-*.png and
// test-artifacts/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { Hub, dropSpec, browser, viewer, openPage, ADMIN, SHOTS } from './harness.mjs';

let hub;
let b;
let receiver;
const pages = [];

/** An HTTP receiver on 127.0.0.1: records every request; `/fail…` answers 500 until `failing` is false. */
function startReceiver() {
  const got = [];
  const r = { got, failing: true, waiters: [] };
  r.server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json = null;
      try { json = JSON.parse(body); } catch { /* recorded raw */ }
      const entry = { path: req.url, headers: req.headers, body, json, at: Date.now() };
      got.push(entry);
      const fail = req.url.startsWith('/fail') && r.failing;
      res.writeHead(fail ? 500 : 200, { 'content-type': 'text/plain' });
      res.end(fail ? 'receiver down' : 'ok');
      for (const w of r.waiters.slice()) w();
    });
  });
  /** Resolves with the first request matching `pred` (already received or coming), or fails after `ms`. */
  r.waitFor = (pred, what, ms = 20000) => new Promise((ok, fail) => {
    const check = () => {
      const hit = got.find(pred);
      if (!hit) return false;
      r.waiters = r.waiters.filter((w) => w !== check);
      clearTimeout(timer);
      ok(hit);
      return true;
    };
    const timer = setTimeout(() => {
      r.waiters = r.waiters.filter((w) => w !== check);
      fail(new Error(`the receiver got no ${what} in ${ms} ms; it got: ${got.map((g) => `${g.path} ${g.json?.type}`).join(', ')}`));
    }, ms);
    if (!check()) r.waiters.push(check);
  });
  return new Promise((ok) => r.server.listen(0, '127.0.0.1', () => {
    r.base = `http://127.0.0.1:${r.server.address().port}`;
    ok(r);
  }));
}

before(async () => {
  hub = await Hub.start({ args: ['--webhook-allow-private', 'true', '--webhook-retry-schedule', '0,1,1'] });
  b = await browser();
  receiver = await startReceiver();
});

after(async () => {
  await b?.close();
  await hub?.stop();
  await new Promise((ok) => (receiver ? receiver.server.close(ok) : ok()));
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
  await page.screenshot({ path: `/tmp/wh-${name}.png`, ...opts });
  await page.screenshot({ path: join(SHOTS, `wh-${name}.png`), ...opts });
}

const text = (page, sel) => page.locator(sel).innerText();
const box = async (page, sel) => {
  const r = await page.locator(sel).boundingBox();
  return [r.x, r.y, r.width, r.height].map(Math.round);
};

/** A viewer token minted by the admin, and a waitlist post with it. */
async function joinWaitlist(dropId, handle, body = {}) {
  const v = await hub.api('POST', '/viewers', { handle });
  const resp = await fetch(`${hub.base}/api/v1/drops/${dropId}/waitlist`, {
    method: 'POST', headers: { authorization: `Bearer ${v.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.ok(resp.ok, `waitlist join answered ${resp.status}`);
  return v;
}

const signed = (h) => ({ 'webhook-id': h['webhook-id'], 'webhook-timestamp': h['webhook-timestamp'], 'webhook-signature': h['webhook-signature'] });
const row = (page, sel) => page.locator(sel);

test('the panel adds a webhook endpoint (secret shown once); a waitlist join reaches the receiver signed and shows delivered; failures, retry, replay, rotate, disable, delete', async () => {
  const t0 = Date.now();
  const panel = await track(openPage(b, 'panel', { width: 1920, height: 1080 }));
  await panel.goto(`${hub.base}/panel#webhooks`);
  await panel.fill('#token', ADMIN);
  await panel.press('#token', 'Enter');
  await panel.waitForSelector('#webhooks:not([hidden])');
  assert.equal(await panel.getAttribute('#nav-webhooks', 'aria-current'), 'page');
  await panel.waitForFunction(() => /No endpoints yet/.test(document.querySelector('#wh-endpoints tbody').textContent));
  assert.equal(await panel.isChecked('#wh-form input[name=which][value=all]'), true, 'all events by default');
  assert.equal(await panel.locator('#wh-event-list input').count(), 17);

  // The API's refusal shows beside the form: credentials in the URL are url_refused.
  await panel.fill('#wh-url', `http://user:pw@127.0.0.1:${receiver.server.address().port}/hooks`);
  await panel.click('#wh-form button[type=submit]');
  await panel.waitForFunction(() => document.querySelector('#wh-form-error').textContent.includes('url_refused'));
  assert.match(await text(panel, '#wh-url + .field-error'), /credentials/);
  assert.equal(await panel.getAttribute('#wh-url', 'class'), 'invalid');
  assert.equal(await panel.isVisible('#wh-secret'), false);
  await shot(panel, 'panel-url-refused-1920x1080');

  // A good endpoint for every event: the secret shows once.
  await panel.fill('#wh-url', `${receiver.base}/hooks`);
  await panel.fill('#wh-desc', 'CRM: every event');
  await panel.click('#wh-form button[type=submit]');
  await panel.waitForSelector('#wh-secret:not([hidden])');
  const secret = await panel.inputValue('#wh-secret-value');
  assert.match(secret, /^whsec_[A-Za-z0-9+/]+=*$/);
  assert.match(await text(panel, '#wh-secret'), /Shown once/);
  assert.equal(await text(panel, '#wh-form-error'), '');
  assert.equal(await panel.inputValue('#wh-url'), '', 'the form is cleared');
  const [endpoint] = (await hub.api('GET', '/webhooks')).endpoints;
  assert.deepEqual([endpoint.url, endpoint.events, endpoint.description, endpoint.enabled], [`${receiver.base}/hooks`, ['*'], 'CRM: every event', true]);
  assert.equal(endpoint.secret, undefined, 'the list never carries the secret');
  const epRow = `#wh-endpoints tr[data-id="${endpoint.id}"]`;
  await panel.waitForSelector(epRow);
  assert.equal(await panel.textContent(`${epRow} .pill`), 'enabled');
  assert.match(await text(panel, `${epRow} .wh-ev`), /all events/);
  await panel.waitForSelector('#wh-deliveries:not([hidden])'); // the new endpoint is the chosen one
  assert.equal(await text(panel, '#wh-del-url'), `${receiver.base}/hooks`);

  // Something happens: a drop, and a viewer joins its waitlist.
  await hub.api('POST', '/drops', dropSpec('wh-drop'));
  await joinWaitlist('wh-drop', 'gia');
  const joined = await receiver.waitFor((g) => g.path === '/hooks' && g.json?.type === 'waitlist.joined', 'waitlist.joined');
  assert.equal(joined.headers['content-type'], 'application/json');
  assert.match(joined.headers['webhook-id'], /^msg_/);
  const payload = new Webhook(secret).verify(joined.body, signed(joined.headers));
  assert.equal(payload.type, 'waitlist.joined');
  assert.equal(payload.data.drop_id, 'wh-drop');
  assert.throws(() => new Webhook(secret).verify(joined.body.replace('wh-drop', 'xx-drop'), signed(joined.headers)), 'a changed body fails');

  // The panel's deliveries list shows it delivered (it reads every ~5 s).
  const joinedRow = `#wh-del-table tr[data-event="waitlist.joined"][data-state="delivered"]`;
  await panel.waitForSelector(joinedRow, { timeout: 20000 });
  assert.match(await text(panel, `${joinedRow} .wh-answer`), /^HTTP 200$/);
  assert.match(await text(panel, joinedRow), /\d+ ms/);
  assert.equal(await row(panel, `${joinedRow}.failed`).count(), 0);
  assert.equal(await text(panel, `${joinedRow} td:nth-child(4)`), '1', 'one try');

  // A second endpoint, for waitlist.joined only (picked in the list), whose receiver fails.
  await panel.fill('#wh-url', `${receiver.base}/fail`);
  await panel.check('#wh-event-list input[value="waitlist.joined"]');
  assert.equal(await panel.isChecked('#wh-form input[name=which][value=some]'), true, 'ticking an event picks "only these"');
  await panel.click('#wh-form button[type=submit]');
  await panel.waitForFunction((old) => document.querySelector('#wh-secret-value').value !== old
    && document.querySelector('#wh-secret-value').value.startsWith('whsec_'), secret);
  const failing = (await hub.api('GET', '/webhooks')).endpoints.find((e) => e.url.endsWith('/fail'));
  assert.deepEqual(failing.events, ['waitlist.joined']);
  await panel.click('#wh-secret-done');
  assert.equal(await panel.isVisible('#wh-secret'), false);
  assert.equal(await panel.inputValue('#wh-secret-value'), '', 'the secret is gone from the page');

  await joinWaitlist('wh-drop', 'hoa');
  // Three tries (0, 1, 1 s), all 500: a dead letter, marked; the endpoint is failing.
  const failRow = `#wh-endpoints tr[data-id="${failing.id}"]`;
  await panel.waitForFunction((sel) => document.querySelector(sel)?.dataset.state === 'failing', failRow, { timeout: 20000 });
  assert.match(await text(panel, `${failRow} .wh-status`), /failing\s*since \d\d:\d\d:\d\d/i);
  assert.equal(await panel.getAttribute(`${failRow} button[data-action=deliveries]`, 'aria-pressed'), 'true', 'a new endpoint’s deliveries show');
  assert.equal(await panel.getAttribute(`${epRow} button[data-action=deliveries]`, 'aria-pressed'), 'false');
  const deadRow = '#wh-del-table tr[data-event="waitlist.joined"][data-state="dead"]';
  await panel.waitForSelector(deadRow, { timeout: 20000 });
  assert.equal(await row(panel, `${deadRow}.failed`).count(), 1, 'a dead letter is marked as a failure');
  assert.match(await text(panel, `${deadRow} .wh-answer`), /HTTP 500/);
  assert.equal(await text(panel, `${deadRow} td:nth-child(4)`), '3');
  assert.equal(receiver.got.filter((g) => g.path === '/fail').length, 3);
  await shot(panel, 'panel-webhooks-dead-1920x1080', { fullPage: true });

  // The receiver is back: Retry delivers the dead letter.
  receiver.failing = false;
  await panel.click(`${deadRow} button[data-action=retry]`);
  await panel.waitForSelector('#wh-del-table tr[data-event="waitlist.joined"][data-state="delivered"]', { timeout: 20000 });
  assert.equal(await row(panel, '#wh-del-table tr.failed').count(), 0);
  await panel.waitForFunction((sel) => document.querySelector(sel)?.dataset.state === 'enabled', failRow, { timeout: 20000 });

  // Disable it, then delete it (two clicks).
  await panel.click(`${failRow} button[data-action=toggle]`);
  await panel.waitForFunction((sel) => document.querySelector(sel)?.dataset.state === 'disabled', failRow);
  assert.equal((await hub.api('GET', `/webhooks/${failing.id}`)).enabled, false);
  assert.equal(await text(panel, `${failRow} button[data-action=toggle]`), 'Enable');
  await panel.click(`${failRow} button[data-action=delete]`);
  assert.equal(await text(panel, `${failRow} button[data-action=delete]`), 'Click again to delete');
  await panel.click(`${failRow} button[data-action=delete]`);
  await panel.waitForFunction((sel) => !document.querySelector(sel), failRow);
  assert.deepEqual((await hub.api('GET', '/webhooks')).endpoints.map((e) => e.id), [endpoint.id]);
  assert.equal(await panel.isVisible('#wh-deliveries'), false, 'the deleted endpoint’s deliveries go');

  // Rotate the first endpoint's secret: the new one shows once; for a while both sign.
  await panel.click(`${epRow} button[data-action=rotate]`);
  await panel.waitForSelector('#wh-secret:not([hidden])');
  const rotated = await panel.inputValue('#wh-secret-value');
  assert.match(rotated, /^whsec_/);
  assert.notEqual(rotated, secret);
  assert.match(await text(panel, '#wh-secret-for'), /previous one still signs/);
  const rotatedAt = Date.now();
  const ida = await joinWaitlist('wh-drop', 'ida');
  const third = await receiver.waitFor((g) => g.path === '/hooks' && g.json?.type === 'waitlist.joined' && g.at >= rotatedAt, 'the third waitlist.joined');
  assert.equal(third.json.data.viewer_id, ida.viewer_id);
  assert.equal(third.headers['webhook-signature'].split(' ').length, 2, 'two signatures during a rotation');
  new Webhook(rotated).verify(third.body, signed(third.headers));
  new Webhook(secret).verify(third.body, signed(third.headers));

  // Replay since before the test: every message to the endpoint goes out again, same ids.
  await panel.click(`${epRow} button[data-action=deliveries]`);
  await panel.waitForSelector('#wh-deliveries:not([hidden])');
  const sentBefore = receiver.got.filter((g) => g.path === '/hooks').length;
  const since = new Date(t0 - 60000);
  const local = new Date(since.getTime() - since.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
  await panel.fill('#wh-replay-since', local);
  await panel.click('#wh-replay button[type=submit]');
  await panel.waitForFunction(() => /\d+ messages? since .* will go out again/.test(document.querySelector('#wh-replay-out').textContent));
  const requeued = Number((await text(panel, '#wh-replay-out')).match(/^(\d+)/)[1]);
  assert.ok(requeued >= 3, `requeued ${requeued}`);
  await receiver.waitFor((g) => g.path === '/hooks' && receiver.got.filter((x) => x.path === '/hooks').length >= sentBefore + requeued, 'the replayed messages');
  const again = receiver.got.filter((g) => g.path === '/hooks' && g.headers['webhook-id'] === joined.headers['webhook-id']);
  assert.ok(again.length >= 2, 'the replay carries the same webhook-id');

  await panel.waitForSelector(joinedRow);
  await shot(panel, 'panel-webhooks-1920x1080', { fullPage: true });
  await panel.setViewportSize({ width: 390, height: 844 });
  await shot(panel, 'panel-webhooks-390x844', { fullPage: true });
  noPageErrors();
  await panel.context().close();
});

/** A drop whose claims get a confirmation: two cross-sell links and a 15 % coupon. */
function followUpSpec(id) {
  return {
    ...dropSpec(id, { stock: 3 }),
    follow_up: {
      cross_sell: [
        { name: 'Matching saucer', url: 'https://shop.example/saucer', price_cents: 1200 },
        { name: 'Glaze sampler', url: 'https://shop.example/sampler', price_cents: 900 },
      ],
      coupon: { percent_off: 15, valid_h: 48 },
    },
  };
}

/** Where the boxes around the card are (the leaderboard's height is its content: only its place counts). */
const layoutBoxes = async (page) => [...await Promise.all(['#claim', '.claim', '.coupon', '.stock'].map((s) => box(page, s))),
  (await box(page, '.board')).slice(0, 3)];

test('a granted claim of a drop with a follow-up shows the confirmation: item, code, checkout time, cross-sell, coupon as in the ledger; nothing moves; dismiss, reopen, reload', async () => {
  await hub.api('POST', '/drops', followUpSpec('fu-drop'));
  const hal = await track(viewer(b, hub, 'fu-drop', 'hal', { width: 1280, height: 800 }));
  const ivy = await track(viewer(b, hub, 'fu-drop', 'ivy', { width: 390, height: 844 }));
  await hub.api('POST', '/drops/fu-drop/start', {});
  await hub.api('POST', '/drops/fu-drop/fire', { cue: 1 });

  const facts = async () => (await hub.api('GET', '/ledger/facts?kind=followup.confirmation&drop=fu-drop')).facts;
  for (const [page, handle, size] of [[hal, 'hal', '1280x800'], [ivy, 'ivy', '390x844']]) {
    await page.waitForFunction(() => !document.querySelector('#claim').disabled);
    const boxes = await layoutBoxes(page);
    const cardBox = await box(page, '.card');
    assert.equal(await page.isVisible('#confirm'), false);
    await page.click('#claim');
    await page.waitForFunction(() => document.querySelector('#claim-result').dataset.ok === 'yes');
    await page.waitForSelector('#confirm:not([hidden])');
    await page.waitForFunction(() => document.querySelector('#confirm').getAnimations().length === 0); // its entrance
    const code = await text(page, '#claim-result .claim-code');
    const claim = (await hub.api('GET', '/drops/fu-drop/claims')).claims.find((c) => c.handle === handle);
    assert.equal(claim.code, code);

    assert.equal(await text(page, '#confirm-item'), 'Speckled mug');
    assert.equal(await text(page, '#confirm-code'), code);
    const hhmm = await page.evaluate((ms) => { const d = new Date(ms); return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`; }, claim.hold_until_ms);
    assert.equal(await text(page, '#confirm-until'), hhmm);
    assert.match(await text(page, '#confirm-checkout'), new RegExp(`^Check out before ${hhmm} with code$`));
    const links = await page.$$eval('#confirm-links a', (as) => as.map((a) => [a.textContent, a.getAttribute('href'), a.target, a.rel]));
    assert.equal(links.length, 2);
    assert.match(links[0][0], /^Matching saucer(€12\.00|12\.00 €|EUR 12\.00)$/);
    assert.deepEqual(links.map((l) => l.slice(1)), [['https://shop.example/saucer', '_blank', 'noopener'], ['https://shop.example/sampler', '_blank', 'noopener']]);

    // The coupon is the one the ledger recorded with the confirmation.
    const fact = (await facts()).find((f) => f.detail.code === code);
    assert.ok(fact, 'a followup.confirmation fact for this claim');
    const couponCode = await text(page, '.confirm-coupon-code');
    assert.equal(couponCode, fact.detail.coupon.code);
    assert.match(await text(page, '#confirm-coupon-text'), new RegExp(`^15% off your next order — ${couponCode}, valid until .+, \\d\\d:\\d\\d$`));

    // It lies over the card (and on a phone the countdown): nothing else moves.
    assert.deepEqual(await layoutBoxes(page), boxes, 'the Claim button, coupon, stock and board do not move');
    assert.deepEqual(await box(page, '.card'), cardBox);
    const confirmBox = await box(page, '#confirm');
    if (size === '1280x800') assert.deepEqual(confirmBox, cardBox, 'the confirmation takes the card’s box');
    else {
      const countdown = await box(page, '.countdown');
      assert.deepEqual(confirmBox, [countdown[0], countdown[1], countdown[2], cardBox[1] + cardBox[3] - countdown[1]], 'over the countdown and the card');
    }
    await shot(page, `live-confirm-${size}`, { fullPage: true });
    const fit = await page.evaluate(() => { const c = document.querySelector('#confirm'); return [c.scrollHeight, c.clientHeight]; });
    assert.ok(fit[0] <= fit[1] + 1, `everything fits without scrolling (${size}: ${fit})`);
  }
  const [first] = await facts();
  assert.ok(first.detail.coupon.code, 'facts[0].detail.coupon.code');

  // A reload shows it again (localStorage); × puts the card back; "Order details" brings it again.
  await ivy.reload();
  await ivy.waitForFunction(() => document.body.dataset.connected === 'yes');
  await ivy.waitForSelector('#confirm:not([hidden])');
  assert.equal(await text(ivy, '#confirm-item'), 'Speckled mug');
  await ivy.click('#confirm-close');
  await ivy.waitForSelector('#confirm', { state: 'hidden' });
  assert.equal(await ivy.isVisible('#card-stock'), true, 'the card is back');
  await ivy.waitForSelector('#claim-result .confirm-open:not([hidden])');
  await ivy.click('#claim-result .confirm-open');
  await ivy.waitForSelector('#confirm:not([hidden])');
  assert.equal(await ivy.isVisible('#claim-result .confirm-open'), false);
  await ivy.keyboard.press('Escape');
  await ivy.waitForSelector('#confirm', { state: 'hidden' });
  await ivy.reload();
  await ivy.waitForFunction(() => document.body.dataset.connected === 'yes' && document.querySelector('#claim-result').dataset.ok === 'yes');
  assert.equal(await ivy.isVisible('#confirm'), false, 'dismissed stays dismissed across a reload');
  await shot(ivy, 'live-confirm-dismissed-390x844', { fullPage: true });

  // A drop without a follow-up: a claim shows no confirmation.
  await hub.api('POST', '/drops', dropSpec('plain-drop'));
  const jo = await track(viewer(b, hub, 'plain-drop', 'jo'));
  await hub.api('POST', '/drops/plain-drop/start', {});
  await hub.api('POST', '/drops/plain-drop/fire', { cue: 1 });
  await jo.waitForFunction(() => !document.querySelector('#claim').disabled);
  await jo.click('#claim');
  await jo.waitForFunction(() => document.querySelector('#claim-result').dataset.ok === 'yes');
  assert.equal(await jo.isVisible('#confirm'), false);
  assert.equal(await jo.locator('.confirm-open').count(), 0);
  noPageErrors();
  await Promise.all([hal, ivy, jo].map((p) => p.context().close()));
});
