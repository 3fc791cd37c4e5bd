// The vendored chart library (assets/vendor/uplot/) is the npm release, byte for byte: the
// files the binary embeds equal those of the package installed from the lock file, and the
// running binary serves exactly them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hub, repo } from './harness.mjs';

const tests = join(repo, 'overlay-web', 'tests');
const pkg = join(tests, 'node_modules', 'uplot');
const vendored = join(repo, 'overlay-web', 'assets', 'vendor', 'uplot');
const FILES = [['dist/uPlot.iife.min.js', 'uPlot.iife.min.js'], ['dist/uPlot.min.css', 'uPlot.min.css'], ['LICENSE', 'LICENSE']];
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

let hub;
before(async () => { hub = await Hub.start(); });
after(async () => { await hub?.stop(); });

test('the installed uplot is the version pinned in package.json and package-lock.json', () => {
  const manifest = JSON.parse(readFileSync(join(tests, 'package.json'), 'utf8'));
  const lock = JSON.parse(readFileSync(join(tests, 'package-lock.json'), 'utf8'));
  const installed = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
  const pinned = manifest.devDependencies.uplot;
  assert.match(pinned, /^\d+\.\d+\.\d+$/, 'an exact version, not a range');
  assert.equal(lock.packages['node_modules/uplot'].version, pinned);
  assert.match(lock.packages['node_modules/uplot'].integrity, /^sha512-/);
  assert.equal(installed.name, 'uplot');
  assert.equal(installed.version, pinned);
  assert.equal(installed.license, 'MIT');
  const readme = readFileSync(join(vendored, 'README.md'), 'utf8');
  assert.ok(readme.includes(`**${pinned}**`), 'the vendor README names the version');
});

test('assets/vendor/uplot holds byte-identical copies of the npm package files', () => {
  for (const [from, to] of FILES) {
    const npm = readFileSync(join(pkg, from));
    const ours = readFileSync(join(vendored, to));
    assert.ok(npm.length > 0);
    assert.equal(sha256(ours), sha256(npm), `${to} differs from uplot/${from}: run overlay-web/vendor.sh`);
    assert.ok(ours.equals(npm));
  }
  const js = readFileSync(join(vendored, 'uPlot.iife.min.js'), 'utf8');
  const version = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).version;
  assert.ok(js.startsWith(`/*! https://github.com/leeoniya/uPlot (v${version}) */`), 'the banner names the release');
});

test('the binary serves the vendored files unchanged, with their content types', async () => {
  for (const [from, to] of FILES.slice(0, 2)) {
    const resp = await fetch(`${hub.base}/assets/vendor/uplot/${to}`, { headers: { 'accept-encoding': 'identity' } });
    assert.equal(resp.status, 200, to);
    assert.match(resp.headers.get('content-type'), to.endsWith('.js') ? /javascript/ : /text\/css/);
    assert.ok(resp.headers.get('etag'));
    const body = Buffer.from(await resp.arrayBuffer());
    assert.equal(sha256(body), sha256(readFileSync(join(pkg, from))), `served ${to} is the npm file`);
  }
});
