// Unit tests of the words the pages share (assets/js/views.js): the same everywhere, so the
// viewer overlay and the OBS source cannot disagree again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KIND, NEXT, clock, scarcity, stockLabel, pad2 } from '../../assets/js/views.js';

test('stock wording: "n left", "only n left" when scarce, "sold out" (the OBS source upper-cases it in CSS)', () => {
  assert.equal(stockLabel(40, 40), '40 left');
  assert.equal(stockLabel(9, 40), '9 left');
  assert.equal(stockLabel(8, 40), 'only 8 left', 'a fifth or fewer is scarce');
  assert.equal(stockLabel(4, 5), '4 left', 'a fifth of 5 is 1, but 3 or fewer is always scarce');
  assert.equal(stockLabel(3, 5), 'only 3 left');
  assert.equal(stockLabel(0, 5), 'sold out');
  assert.equal(scarcity(-1, 5), 'sold-out');
});

test('cue kinds and countdown labels: one wording for every page', () => {
  assert.equal(KIND.intro, 'Live now');
  assert.equal(NEXT.close, 'The drop closes in');
  assert.deepEqual(Object.keys(KIND).sort(), ['close', 'cta', 'flash_coupon', 'intro', 'quest', 'reveal', 'scarcity', 'soft_close']);
});

test('clock: rounds up, so 0:00 means now; hours when there are any', () => {
  assert.equal(clock(0), '0:00');
  assert.equal(clock(1), '0:01');
  assert.equal(clock(65_000), '1:05');
  assert.equal(clock(3_725_000), '1:02:05');
  assert.equal(clock(-5000), '0:00');
  assert.equal(pad2(7), '07');
});
