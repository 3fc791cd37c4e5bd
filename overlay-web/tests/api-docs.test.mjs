// The API reference page (/api/docs) in headless Chromium against the real binary: it
// renders the hub's OpenAPI document (operations by tag, their parameters, bodies,
// answers and security, and the schemas), loads nothing from elsewhere, and a link to an
// operation opens it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Hub, browser, openPage, SHOTS } from './harness.mjs';

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

test('the API reference renders every operation and schema of the OpenAPI document', async () => {
  const spec = await (await fetch(`${hub.base}/api/v1/openapi.json`)).json();
  const operations = Object.values(spec.paths)
    .flatMap((item) => ['get', 'post', 'put', 'patch', 'delete'].filter((m) => item[m]));
  const schemas = Object.keys(spec.components.schemas);

  const page = await openPage(b, 'api-docs');
  const elsewhere = [];
  page.on('request', (req) => { if (!req.url().startsWith(hub.base)) elsewhere.push(req.url()); });
  await page.goto(`${hub.base}/api/docs`);
  await page.waitForFunction(() => document.body.dataset.ready === 'true');

  assert.equal(await page.locator('details.op').count(), operations.length);
  assert.equal(await page.locator('.schema-def').count(), schemas.length);
  assert.equal(await page.locator('#tag-drops details.op').count(), 8, 'the drops tag has its 8 operations');
  assert.match(await page.locator('#version').textContent(), /OpenAPI 3\.1/);

  // One operation, opened: its parameter, body, answers (with the shared error answers
  // resolved) and who may call it.
  const create = page.locator('details.op', { has: page.locator('.path', { hasText: /^\/api\/v1\/drops$/ }) })
    .filter({ has: page.locator('.method.post') });
  assert.equal(await create.locator('.auth').textContent(), 'admin token');
  await create.locator('summary').click();
  const body = await create.locator('.body').textContent();
  for (const want of ['Request body (required)', 'application/json', 'CreateDrop', '201', '401', 'unauthorized', '422', 'invalid']) {
    assert.ok(body.includes(want), `POST /api/v1/drops shows ${want}`);
  }
  // Its body is one of two shapes: a drop written out, or a recipe and its parameters.
  const createDrop = await page.locator('#schema-CreateDrop').textContent();
  for (const want of ['DropSpec', 'DropFromRecipe']) {
    assert.ok(createDrop.includes(want), `CreateDrop shows ${want}`);
  }
  const mint = page.locator('details.op', { has: page.locator('.path', { hasText: /^\/api\/v1\/viewers$/ }) });
  assert.equal(await mint.locator('.auth').textContent(), 'public or admin token');

  // A schema: its fields, required ones marked, constraints shown.
  const spec_ = page.locator('#schema-DropSpec');
  const text = await spec_.textContent();
  for (const want of ['title', 'required', 'inventory', 'min items 1', 'hold_s', '≥ 10']) {
    assert.ok(text.includes(want), `DropSpec shows ${want}`);
  }

  // A link to an operation opens it.
  await page.locator('nav a', { hasText: '/api/v1/ledger/import' }).click();
  const anchor = await page.evaluate(() => location.hash.slice(1));
  await page.waitForFunction((id) => document.getElementById(id).open, anchor);

  await page.screenshot({ path: join(SHOTS, 'api-docs.png'), fullPage: false });
  assert.deepEqual(elsewhere, [], 'the page loads nothing from elsewhere');
  assert.deepEqual(page.errors, []);
});
