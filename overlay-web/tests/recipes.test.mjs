// The recipe library in headless Chromium against the real binary: the three shipped recipes
// are there on the first start; a drop is made from one through the parameter form (a bad
// parameter value named first), remembers its recipe (drop object, ledger fact, KPIs by
// recipe); a drop is saved as a recipe and edited (its version goes up); a deleted shipped
// recipe stays deleted after a restart. Screenshots land in test-artifacts/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Hub, browser, openPage, ADMIN, SHOTS } from './harness.mjs';

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

/** Polls `fn` until it returns something truthy (or fails after `ms`). */
async function until(fn, what, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

const listed = (panel) => panel.$$eval('#rc-list .rc-item', (items) => items.map((i) => i.dataset.id));

test('a maker starts a drop from a shipped recipe in the panel, saves a drop as a recipe and edits it', async () => {
  const panel = await openPage(b, 'recipes', { width: 1440, height: 900 });
  await panel.addInitScript((t) => localStorage.setItem('dropwire.admin', t), ADMIN);
  await panel.goto(`${hub.base}/panel#new`);

  // The create form sends the maker to the library instead of loading a hard-coded example.
  await panel.click('#from-recipe');
  await panel.waitForSelector('#recipes:not([hidden]) #rc-list .rc-item');
  assert.deepEqual(await listed(panel), ['single-item-10min', 'workshop-12min', 'demo-6min']);
  assert.match(await panel.textContent('[data-id="workshop-12min"] .rc-meta'), /workshop · 12 min · 4 parameters · v1/);

  // The parameter form: defaults filled in; an out-of-range stock is named with its parameter.
  await panel.click('[data-id="single-item-10min"] [data-action="use"]');
  await panel.waitForSelector('#rc-use:not([hidden]) #rc-p-item');
  assert.equal(await panel.inputValue('#rc-p-item'), 'Speckled mug');
  assert.equal(await panel.inputValue('#rc-p-stock'), '30');
  await panel.fill('#rc-p-item', 'Blue bowl');
  await panel.fill('#rc-p-price_cents', '4500');
  await panel.fill('#rc-p-stock', '2000000');
  await panel.fill('#rc-drop-id', 'blue-bowls');
  await panel.click('#rc-use button[type=submit]');
  await panel.waitForFunction(() => document.querySelector('#rc-use-error').textContent.includes('parameter "stock"'));
  assert.match(await panel.textContent('#rc-use-error'), /at most 1000000/);
  assert.equal(await panel.getAttribute('#rc-p-stock', 'class'), 'invalid');
  await panel.screenshot({ path: join(SHOTS, 'panel-recipe-use-1440x900.png'), fullPage: true });

  await panel.fill('#rc-p-stock', '12');
  // Starting by itself needs an announced start: the box is marked until one is given.
  await panel.check('#rc-auto');
  await panel.click('#rc-use button[type=submit]');
  await panel.waitForFunction(() => document.querySelector('#rc-use-error').textContent.includes('starts_at'));
  assert.equal(await panel.getAttribute('#rc-auto', 'class'), 'invalid');
  const starts = new Date(Date.now() + 3 * 86_400_000);
  starts.setSeconds(0, 0);
  const local = new Date(starts.getTime() - starts.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  await panel.fill('#rc-starts', local);
  await panel.click('#rc-use button[type=submit]');
  await panel.waitForFunction(() => location.hash === '#drop=blue-bowls');
  await panel.waitForFunction(() => document.querySelector('#drop-title').textContent === 'Blue bowl — live from the studio');
  await panel.waitForFunction(() => document.querySelector('#drop-recipe').textContent === 'from recipe single-item-10min (v1)');
  const drop = await hub.api('GET', '/drops/blue-bowls');
  assert.deepEqual(drop.recipe, { id: 'single-item-10min', version: 1 });
  assert.equal(drop.auto_start, true);
  assert.equal(Date.parse(drop.starts_at), starts.getTime());
  assert.deepEqual(drop.inventory.map((i) => [i.name, i.price_cents, i.stock]), [['Blue bowl', 4500, 12]]);
  assert.equal(drop.script.cues.find((c) => c.type === 'flash_coupon').code, 'LIVE10');
  assert.equal(drop.early_access_s, 60);

  // The ledger's drop.scheduled fact carries the recipe, and the KPIs group by it.
  const fact = await until(async () => (await hub.api('GET', '/ledger/facts?drop=blue-bowls&kind=drop.scheduled')).facts[0], 'the drop.scheduled fact');
  assert.equal(fact.detail.recipe, 'single-item-10min');
  assert.equal(fact.detail.recipe_version, 1);
  const summary = await hub.api('GET', '/analytics/summary?by=recipe&from=2000-01-01');
  assert.ok(summary.groups.some((g) => g.key === 'single-item-10min' && g.drops === 1), JSON.stringify(summary.groups));

  // Save the drop as a recipe: its title, name, price and stock become parameters.
  await panel.click('#drop-to-recipe');
  await panel.waitForSelector('#rc-edit:not([hidden])');
  const saved = new URLSearchParams((await panel.evaluate(() => location.hash)).slice(1)).get('edit');
  assert.match(saved, /^blue-bowl-live-from-the-studio-/);
  const text = JSON.parse(await panel.inputValue('#rc-json'));
  assert.deepEqual(text.params.map((p) => [p.name, p.default]), [['title', 'Blue bowl — live from the studio'], ['item', 'Blue bowl'], ['price_cents', 4500], ['stock', 12]]);
  assert.equal(text.drop.inventory[0].stock, '{{stock}}');

  // Edit it: a placeholder of no parameter is refused with its place; a good change is version 2.
  text.drop.script.cues[0].title = 'Welcome back, {{colour}}';
  await panel.fill('#rc-json', JSON.stringify(text));
  await panel.click('#rc-edit button[type=submit]');
  await panel.waitForFunction(() => document.querySelector('#rc-json-error').textContent.includes('unknown parameter "colour"'));
  assert.match(await panel.textContent('#rc-json-error'), /drop\.script\.cues\[0\]\.title/);
  text.name = 'Bowls, the usual';
  text.drop.script.cues[0].title = 'Welcome back: {{item}}';
  await panel.fill('#rc-json', JSON.stringify(text));
  await panel.click('#rc-edit button[type=submit]');
  await panel.waitForSelector('#rc-use:not([hidden])');
  assert.equal(await panel.textContent('#rc-use-name'), 'Bowls, the usual');
  assert.match(await panel.textContent(`[data-id="${saved}"] .rc-meta`), /v2$/);
  const again = await hub.api('GET', `/recipes/${saved}`);
  assert.equal(again.version, 2);

  // A second drop from it, with its defaults.
  await panel.fill('#rc-drop-id', 'blue-bowls-2');
  await panel.click('#rc-use button[type=submit]');
  await panel.waitForFunction(() => location.hash === '#drop=blue-bowls-2');
  assert.deepEqual((await hub.api('GET', '/drops/blue-bowls-2')).recipe, { id: saved, version: 2 });
  await panel.screenshot({ path: join(SHOTS, 'panel-recipe-drop-1440x900.png'), fullPage: true });

  // Delete a shipped recipe (two clicks); after a restart it stays deleted.
  await panel.goto(`${hub.base}/panel#recipes`);
  await panel.waitForSelector('[data-id="demo-6min"]');
  await panel.click('[data-id="demo-6min"] [data-action="delete"]');
  await panel.click('[data-id="demo-6min"] [data-action="delete"]');
  await panel.waitForSelector('[data-id="demo-6min"]', { state: 'detached' });
  await panel.screenshot({ path: join(SHOTS, 'panel-recipes-1440x900.png'), fullPage: true });
  await hub.restart();
  await panel.reload();
  await panel.waitForSelector('#rc-list .rc-item');
  assert.deepEqual(await listed(panel), ['single-item-10min', 'workshop-12min', saved]);
  assert.deepEqual(panel.errors, []);
  await panel.context().close();
});
