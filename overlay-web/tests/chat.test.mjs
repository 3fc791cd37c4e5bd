// The drop's chat in headless Chromium against the real binary: two viewers talk, an
// anonymous viewer is asked to sign in, slow mode and a mute are told plainly, the OBS
// source shows chat only with ?chat=1, and the panel deletes, mutes and pins.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Hub, dropSpec, browser, viewer, openPage, ADMIN, SHOTS } from './harness.mjs';

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

async function done() {
  const open = pages.splice(0);
  assert.deepEqual(open.flatMap((p) => p.errors), [], 'no uncaught errors in the pages');
  await Promise.all(open.map((p) => p.context().close()));
}

/** A live drop (started) with id `id`. */
async function liveDrop(id) {
  const created = await hub.api('POST', '/drops', dropSpec(id));
  await hub.api('POST', `/drops/${id}/start`, {});
  return created;
}

/** Types `text` in the page's chat and sends it. */
async function say(page, text) {
  await page.fill('#chat-input', text);
  await page.click('#chat-send');
}

/** Where `sel` sits in the document (not the viewport: sending scrolls to the chat). */
const docBox = (page, sel) => page.$eval(sel, (n) => {
  const r = n.getBoundingClientRect();
  return [r.x + scrollX, r.y + scrollY, r.width, r.height].map(Math.round);
});
const texts = (page, sel = '#chat-list .chat-msg') => page.$$eval(sel, (ns) => ns.map((n) => n.querySelector('.chat-text').textContent));
const waitText = (page, text, sel = '#chat-list') => page.waitForFunction(([s, t]) => [...document.querySelectorAll(`${s} .chat-text`)].some((n) => n.textContent === t), [sel, text]);

/** The panel, logged in, on drop `id`. */
async function panelOn(id) {
  const panel = await track(openPage(b, 'panel', { width: 1440, height: 1000 }));
  await panel.addInitScript((t) => localStorage.setItem('dropwire.admin', t), ADMIN);
  await panel.goto(`${hub.base}/panel#drop=${id}`);
  await panel.waitForFunction(() => document.querySelector('#drop-state').textContent === 'live');
  return panel;
}

test('two viewers see each other\'s messages once, also after a reload; the input holds 280 characters', async () => {
  await liveDrop('chat-two');
  const [ana, bo] = await Promise.all([track(viewer(b, hub, 'chat-two', 'ana')), track(viewer(b, hub, 'chat-two', 'bo'))]);
  const claimBox = await docBox(ana, '#claim');
  await say(ana, 'hello from ana');
  await waitText(bo, 'hello from ana');
  await say(bo, 'hi ana, bo here');
  await waitText(ana, 'hi ana, bo here');
  for (const p of [ana, bo]) {
    assert.deepEqual(await texts(p), ['hello from ana', 'hi ana, bo here']);
    assert.deepEqual(await p.$$eval('#chat-list .chat-author', (ns) => ns.map((n) => n.textContent)), ['ana', 'bo']);
  }
  assert.equal(await ana.inputValue('#chat-input'), '', 'a sent message leaves the input');
  assert.deepEqual(await docBox(ana, '#claim'), claimBox, 'chat does not move the Claim button');
  assert.equal(await ana.getAttribute('#chat-list', 'aria-live'), 'polite');
  assert.equal(await ana.textContent('label[for=chat-input]'), 'Your message');

  // Longer than 280 characters is cut to 280 in the input (emoji count once, as on the hub).
  await ana.fill('#chat-input', '🎉'.repeat(300));
  assert.equal(await ana.evaluate(() => [...document.querySelector('#chat-input').value].length), 280);
  assert.equal(await ana.textContent('#chat-count'), '0');
  await ana.fill('#chat-input', '');

  // A reload resumes from the snapshot: the same two messages, once each.
  await bo.reload();
  await bo.waitForFunction(() => document.body.dataset.connected === 'yes');
  await waitText(bo, 'hi ana, bo here');
  assert.deepEqual(await texts(bo), ['hello from ana', 'hi ana, bo here']);
  await say(ana, 'welcome back');
  await waitText(bo, 'welcome back');
  assert.deepEqual(await texts(bo), ['hello from ana', 'hi ana, bo here', 'welcome back']);
  await ana.screenshot({ path: join(SHOTS, 'live-chat-1280x800.png'), fullPage: true });
  await done();
});

test('an anonymous viewer reads the chat and is asked to sign in; no input', async () => {
  await liveDrop('chat-anon');
  const ana = await track(viewer(b, hub, 'chat-anon', 'ana'));
  const anon = await track(openPage(b, 'anon'));
  await anon.goto(`${hub.base}/live/chat-anon`);
  await anon.waitForSelector('#join[open]');
  await anon.click('#join-skip');
  await anon.waitForFunction(() => document.body.dataset.connected === 'yes');
  await say(ana, 'anyone there?');
  await waitText(anon, 'anyone there?');
  assert.equal(await anon.isHidden('#chat-form'), true);
  assert.equal(await anon.isHidden('#chat-input'), true);
  assert.equal(await anon.isVisible('#chat-signin'), true);
  assert.match(await anon.textContent('#chat-signin'), /Sign in to chat/);
  await anon.click('#chat-join');
  await anon.waitForSelector('#join[open]');
  assert.equal(await anon.textContent('#join-h'), 'Join the chat');
  await done();
});

test('slow mode: a second message too soon is refused with its wait', async () => {
  await liveDrop('chat-slow');
  await hub.api('PUT', '/drops/chat-slow/chat/settings', { slow_mode_s: 60 });
  const ana = await track(viewer(b, hub, 'chat-slow', 'ana'));
  await ana.waitForFunction(() => document.querySelector('#chat-mode').textContent === 'slow mode: one message every 60s');
  await say(ana, 'first');
  await waitText(ana, 'first');
  await say(ana, 'second');
  await ana.waitForFunction(() => /^slow mode: wait \d+s$/.test(document.querySelector('#chat-error').textContent));
  const wait = Number((await ana.textContent('#chat-error')).match(/wait (\d+)s/)[1]);
  assert.ok(wait >= 1 && wait <= 60, `wait ${wait}s`);
  assert.equal(await ana.inputValue('#chat-input'), 'second', 'the refused text stays for another try');
  assert.deepEqual(await texts(ana), ['first']);
  await done();
});

test('the OBS source shows the chat with ?chat=1 (read-only, pinned on top) and nothing without', async () => {
  const { obs_key: key } = await liveDrop('chat-obs');
  // Three viewers take turns: each stays inside the hub's burst (5) of the per-viewer rate.
  const talkers = await Promise.all(['ana', 'bo', 'cy'].map((h) => track(viewer(b, hub, 'chat-obs', h))));
  const ana = talkers[0];
  const withChat = await track(openPage(b, 'obs-chat', { width: 1920, height: 1080 }));
  const without = await track(openPage(b, 'obs-plain', { width: 1920, height: 1080 }));
  await withChat.goto(`${hub.base}/obs/chat-obs?key=${encodeURIComponent(key)}&chat=1`);
  await without.goto(`${hub.base}/obs/chat-obs?key=${encodeURIComponent(key)}`);
  for (let i = 1; i <= 10; i += 1) {
    await say(talkers[i % 3], `message ${i}`);
    await waitText(ana, `message ${i}`);
  }
  await withChat.waitForFunction(() => document.querySelectorAll('#chat-list .chat-msg').length === 8
    && document.querySelector('#chat-list .chat-msg:last-child .chat-text').textContent === 'message 10');
  assert.deepEqual(await texts(withChat), Array.from({ length: 8 }, (_, i) => `message ${i + 3}`), 'the last eight');
  await hub.api('POST', '/drops/chat-obs/chat', { text: 'Mugs at 2:00!', pin: true });
  await withChat.waitForFunction(() => document.querySelector('#chat-pinned .chat-msg.pinned.host .chat-text')?.textContent === 'Mugs at 2:00!');
  const interactive = await withChat.evaluate(() => document.querySelectorAll(
    'button, input, select, textarea, a[href], [tabindex], [contenteditable], dialog, details, [onclick]').length);
  assert.equal(interactive, 0, 'read-only: no interactive element');
  await withChat.screenshot({ path: join(SHOTS, 'obs-chat-1920x1080.png'), omitBackground: true });
  // Without ?chat=1: the same drop, no chat layer and no message text at all.
  await without.waitForFunction(() => !document.querySelector('#countdown').hidden); // connected and drawn
  assert.equal(await without.$('#chat'), null);
  assert.equal(await without.evaluate(() => document.body.innerText.includes('message 10') || document.body.innerText.includes('Mugs at')), false);
  await done();
});

test('the panel deletes a message and it leaves the viewer page; a pinned host message is on top', async () => {
  await liveDrop('chat-del');
  const ana = await track(viewer(b, hub, 'chat-del', 'ana'));
  const panel = await panelOn('chat-del');
  await say(ana, 'keep me');
  await waitText(ana, 'keep me');
  await say(ana, 'delete me');
  await waitText(ana, 'delete me');
  const row = panel.locator('#cm-messages .cm-msg', { hasText: 'delete me' });
  await row.waitFor();
  assert.match(await row.locator('.cm-viewer').textContent(), /\S/, 'the panel shows the viewer id');
  await row.locator('.cm-delete').click();
  await ana.waitForFunction(() => ![...document.querySelectorAll('#chat-list .chat-text')].some((n) => n.textContent === 'delete me'));
  assert.deepEqual(await texts(ana), ['keep me']);
  await panel.waitForFunction(() => !document.querySelector('#cm-messages').textContent.includes('delete me'));

  // A host message with "pin": marked as the host's, and on top of the viewer's chat.
  await panel.fill('#cm-text', 'Mugs drop at 2:00');
  await panel.check('#cm-pin');
  await panel.click('#cm-send button[type=submit]');
  await ana.waitForFunction(() => document.querySelector('#chat-pinned:not([hidden]) .chat-msg.pinned .chat-text')?.textContent === 'Mugs drop at 2:00');
  await ana.waitForFunction(() => document.querySelector('#chat-list .chat-msg.host .chat-text')?.textContent === 'Mugs drop at 2:00');
  const pin = await ana.locator('#chat-pinned').boundingBox();
  const list = await ana.locator('#chat-list').boundingBox();
  assert.ok(pin.y + pin.height <= list.y, 'the pinned message sits above the messages');
  assert.equal(await ana.textContent('#chat-pinned .chat-host-tag'), 'Host');
  await panel.waitForSelector('#cm-pinned:not([hidden]) .cm-unpin');
  await panel.screenshot({ path: join(SHOTS, 'panel-chat-1440x1000.png'), fullPage: true });
  await panel.click('#cm-pinned .cm-unpin');
  await ana.waitForFunction(() => document.querySelector('#chat-pinned').hidden);
  await done();
});

test('the panel mutes a viewer for 5 minutes and that viewer is told; unmuted, it chats again', async () => {
  await liveDrop('chat-mute');
  const [ana, bo] = await Promise.all([track(viewer(b, hub, 'chat-mute', 'ana')), track(viewer(b, hub, 'chat-mute', 'bo'))]);
  const panel = await panelOn('chat-mute');
  await say(bo, 'buy my stuff instead');
  await waitText(ana, 'buy my stuff instead');
  const row = panel.locator('#cm-messages .cm-msg', { hasText: 'buy my stuff instead' });
  await row.waitFor();
  await row.locator('.cm-mute5').click();
  await panel.waitForSelector('#cm-mutes .cm-mute');
  assert.match(await panel.textContent('#cm-mutes'), /muted until/);
  await say(bo, 'hello?');
  await bo.waitForFunction(() => /muted/.test(document.querySelector('#chat-error').textContent));
  assert.match(await bo.textContent('#chat-error'), /You are muted: you can chat again in (2\d\d|300)s\./);
  await say(ana, 'ana still talks');
  await waitText(bo, 'ana still talks');
  assert.deepEqual(await texts(ana), ['buy my stuff instead', 'ana still talks'], 'the muted message was not sent');

  await panel.click('#cm-mutes .cm-unmute');
  await panel.waitForFunction(() => !document.querySelector('#cm-mutes .cm-mute'));
  await say(bo, 'sorry');
  await waitText(ana, 'sorry');
  await done();
});

test('a keyword quest is earned by saying its word in the chat', async () => {
  await hub.api('POST', '/drops', dropSpec('chat-quest', {
    cues: [
      { at_s: 0, type: 'intro', title: 'Welcome to the studio' },
      { at_s: 1000, type: 'quest', quest: 'keyword', word: 'kiln', points: 30, ttl_s: 600, title: 'Name the oven' },
      { at_s: 3600, type: 'close' },
    ],
  }));
  await hub.api('POST', '/drops/chat-quest/start', {});
  const ana = await track(viewer(b, hub, 'chat-quest', 'ana'));
  await hub.api('POST', '/drops/chat-quest/fire', { cue: 1 });
  await ana.waitForFunction(() => document.querySelector('#quests:not([hidden]) [data-quest="s1"] .quest-how')?.textContent === 'Say “kiln” in the chat');
  await say(ana, 'that KILN is huge');
  await ana.waitForFunction(() => document.querySelector('[data-quest="s1"] .quest-done')?.textContent === '+30 pts ✓');
  await ana.waitForFunction(() => document.querySelector('#my-points').dataset.points === '30');
  await done();
});
