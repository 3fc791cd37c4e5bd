// Unit tests of the pages' chat state (assets/js/chat.js): broadcasts seen twice after a
// resume add nothing, deletes take the pin with them, at most KEEP messages are kept, and the
// input's limit counts what the hub counts (Unicode scalar values).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHAT_MAX, KEEP, applyChat, chatLength, chatOf, chatRefusal, clip } from '../../assets/js/chat.js';

const msg = (id, extra = {}) => ({ id, author: `v${id}`, text: `hi ${id}`, at_ms: 1, host: false, ...extra });

test('a snapshot without chat (an older hub) is chat on, nothing said', () => {
  assert.deepEqual(chatOf(undefined), { enabled: true, slow_mode_s: 0, pinned: null, recent: [] });
  const c = chatOf({ enabled: false, slow_mode_s: 5, pinned: msg('p', { host: true }), recent: [msg('a'), msg('a'), msg('b')] });
  assert.deepEqual(c.recent.map((m) => m.id), ['a', 'b'], 'duplicates dropped');
  assert.equal(c.enabled, false);
  assert.equal(c.slow_mode_s, 5);
});

test('chat frames append in order; one seen again (a resume) adds nothing', () => {
  const c = chatOf({ recent: [msg('a')] });
  assert.equal(applyChat(c, { type: 'chat', seq: 3, messages: [msg('b'), msg('c')] }), true);
  applyChat(c, { type: 'chat', seq: 3, messages: [msg('b'), msg('c')] });
  applyChat(c, { type: 'chat', seq: 4, messages: [msg('c'), msg('d')] });
  assert.deepEqual(c.recent.map((m) => m.id), ['a', 'b', 'c', 'd']);
  assert.equal(applyChat(c, { type: 'stock', items: [] }), false, 'other broadcasts are not chat');
});

test('at most KEEP messages, the newest', () => {
  const c = chatOf({});
  for (let i = 0; i < KEEP + 30; i += 1) applyChat(c, { type: 'chat', messages: [msg(`m${i}`)] });
  assert.equal(c.recent.length, KEEP);
  assert.equal(c.recent[0].id, 'm30');
  assert.equal(c.recent[KEEP - 1].id, `m${KEEP + 29}`);
});

test('deletes remove messages and the pin; pins and settings replace', () => {
  const c = chatOf({ recent: [msg('a'), msg('h', { host: true })] });
  applyChat(c, { type: 'chat_pin', message: msg('h', { host: true }) });
  assert.equal(c.pinned.id, 'h');
  applyChat(c, { type: 'chat_delete', ids: ['a', 'h'] });
  assert.deepEqual(c.recent, []);
  assert.equal(c.pinned, null);
  applyChat(c, { type: 'chat_settings', enabled: false, slow_mode_s: 10 });
  assert.deepEqual([c.enabled, c.slow_mode_s], [false, 10]);
  applyChat(c, { type: 'chat_pin', message: null });
  assert.equal(c.pinned, null);
});

test('the input limit counts scalar values, as the hub does', () => {
  assert.equal(CHAT_MAX, 280);
  assert.equal(chatLength('🎉🎉'), 2, 'an emoji is one, not two UTF-16 units');
  const long = '🎉'.repeat(300);
  assert.equal(chatLength(clip(long)), 280);
  assert.equal(clip('short'), 'short');
});

test('refusals read plainly, with the wait in whole seconds', () => {
  assert.equal(chatRefusal({ reason: 'slow_mode', retry_after_ms: 4200 }), 'slow mode: wait 5s');
  assert.match(chatRefusal({ reason: 'muted', retry_after_ms: 300000 }), /muted.*300s/);
  assert.match(chatRefusal({ reason: 'banned' }), /banned/);
  assert.match(chatRefusal({ reason: 'blocked_word' }), /blocked/);
  assert.match(chatRefusal({ reason: 'too_long' }), /280/);
  assert.match(chatRefusal({ reason: 'chat_off' }), /off/);
});
