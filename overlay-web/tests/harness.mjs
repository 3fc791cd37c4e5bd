// Test harness: the real dropwire binary on a free port, headless Debian Chromium.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import net from 'node:net';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '..', '..');
export const ADMIN = 'browser-test-admin-token-0123';
export const SHOTS = join(repo, 'test-artifacts', 'screenshots');
mkdirSync(SHOTS, { recursive: true });

// A free port below the kernel's ephemeral range (32768-60999), so that a hub stopped and
// started again on it (the restart test) never finds it taken by some client socket's
// local port in between.
export async function freePort() {
  for (let tries = 0; tries < 500; tries += 1) {
    const port = 12000 + Math.floor(Math.random() * 20000);
    const free = await new Promise((ok) => {
      const srv = net.createServer();
      srv.once('error', () => ok(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => ok(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port between 12000 and 32000');
}

export class Hub {
  /** `args`: more flags for `dropwire serve`, e.g. ['--webhook-allow-private', 'true']. */
  static async start({ port, dataDir, args = [] } = {}) {
    const hub = new Hub();
    hub.port = port || (await freePort());
    hub.dataDir = dataDir || mkdtempSync(join(tmpdir(), 'dropwire-web-'));
    hub.args = args;
    await hub.spawn();
    return hub;
  }

  spawn() {
    const { DROPWIRE_BIN, ...env } = process.env; // the hub refuses DROPWIRE_* settings it does not know
    const bin = DROPWIRE_BIN || join(repo, 'target', 'debug', 'dropwire');
    this.proc = spawn(bin, ['serve', '--bind', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir, '--admin-token', ADMIN, ...(this.args || [])],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...env, DROPWIRE_LOG: 'warn' } });
    this.base = `http://127.0.0.1:${this.port}`;
    return new Promise((ok, fail) => {
      let out = '';
      const timer = setTimeout(() => fail(new Error(`dropwire did not start: ${out}`)), 60000);
      this.proc.stdout.on('data', (chunk) => {
        out += chunk;
        if (out.includes('listening on')) {
          clearTimeout(timer);
          ok();
        }
      });
      this.proc.on('exit', (code) => fail(new Error(`dropwire exited (${code}): ${out}`)));
    });
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    const exited = new Promise((ok) => this.proc.once('exit', ok));
    this.proc.kill('SIGTERM');
    await exited;
  }

  async restart() {
    await this.stop();
    await this.spawn();
  }

  async api(method, path, body, { admin = true } = {}) {
    const resp = await fetch(`${this.base}/api/v1${path}`, {
      method,
      headers: { ...(admin ? { authorization: `Bearer ${ADMIN}` } : {}), 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await resp.json().catch(() => null);
    if (!resp.ok) throw new Error(`${method} ${path} → ${resp.status} ${JSON.stringify(data)}`);
    return data;
  }
}

export function dropSpec(id, { stock = 5, revealAt = 3600, duration = 3600, cues } = {}) {
  return {
    id, title: 'Speckled mugs, batch 12', kind: 'drop', currency: 'EUR', hold_s: 900,
    inventory: [{ sku: 'mug', name: 'Speckled mug', price_cents: 3400, stock, per_viewer_limit: 1 }],
    script: { duration_s: duration, cues: cues || [
      { at_s: 0, type: 'intro', title: 'Welcome to the studio' },
      { at_s: revealAt, type: 'reveal', sku: 'mug', title: 'Batch 12 is here' },
      { at_s: duration, type: 'close' },
    ] },
  };
}

export async function browser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

/** Collects uncaught page errors (asserted empty at the end of each test) and, with DEBUG, console lines. */
export function watch(page, name) {
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(`${name}: ${e.message}`));
  if (process.env.DEBUG) page.on('console', (m) => console.log(`[${name}] ${m.type()}: ${m.text()}`));
  return page;
}

/** A new page in its own browser context (own localStorage), at `viewport`. */
export async function openPage(b, name, viewport = { width: 1280, height: 800 }) {
  const ctx = await b.newContext({ viewport });
  return watch(await ctx.newPage(), name);
}

/** A viewer page that joined with `handle` (first visit: the join dialog mints a token). */
export async function viewer(b, hub, id, handle, viewport) {
  const page = await openPage(b, handle, viewport);
  await page.goto(`${hub.base}/live/${id}`);
  await page.waitForSelector('#join[open]');
  await page.fill('#handle', handle);
  await page.click('#join-submit');
  await page.waitForFunction(() => document.body.dataset.connected === 'yes' && !document.querySelector('#join').open
    && document.querySelector('#me-handle').textContent.length > 1);
  return page;
}

/** RGBA of the top-left pixel of a PNG (8-bit RGBA, as Chromium writes with omitBackground). */
export function topLeftPixel(png) {
  let at = 8;
  let width = 0, colorType = 0, depth = 0;
  const idat = [];
  while (at < png.length) {
    const len = png.readUInt32BE(at);
    const type = png.toString('ascii', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') { width = data.readUInt32BE(0); depth = data[8]; colorType = data[9]; }
    if (type === 'IDAT') idat.push(data);
    at += 12 + len;
  }
  if (depth !== 8 || colorType !== 6 || !width) throw new Error(`unexpected PNG (depth ${depth}, color type ${colorType})`);
  const raw = inflateSync(Buffer.concat(idat));
  // The first pixel of the first row is stored unpredicted whatever the row's filter.
  return [...raw.subarray(1, 5)];
}
