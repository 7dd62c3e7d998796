// What the console's browser tests share: the real airtruct binary started as `standalone` on a free port with a
// fresh data directory, serving ui/dist; headless Chromium through playwright-core; and the waits, screenshots and
// API calls the tests make.
//
// AIRTRUCT_BIN: the binary (default ${CARGO_TARGET_DIR:-../target}/debug/airtruct, relative to ui/).
// CHROMIUM: the browser (default /usr/bin/chromium).
import { spawn } from 'node:child_process';
import { test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ui = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// A relative CARGO_TARGET_DIR is taken from the repository root, as cargo run there takes it.
export const targetDir = path.resolve(ui, '..', process.env.CARGO_TARGET_DIR ?? 'target');
export const BIN = process.env.AIRTRUCT_BIN ? path.resolve(process.env.AIRTRUCT_BIN) : path.join(targetDir, 'debug/airtruct');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const SHOTS = path.join(ui, 'test-results/screenshots');
/** The admin's password on the server under test. */
export const PASSWORD = 'console-test-password';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Polls `fn` until it answers something truthy; fails with `what` and the last value after `timeout` ms. */
export async function waitFor(what, fn, timeout = 15000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the locator is visible and its text matches. */
export async function expectText(locator, re, what, timeout = 15000) {
  await waitFor(`${what}: ${re}`, async () => {
    const n = await locator.count();
    for (let i = 0; i < n; i++) {
      const l = locator.nth(i);
      if ((await l.isVisible()) && re.test(await l.innerText())) return true;
    }
    return false;
  }, timeout);
}

export function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * One console under test, for one test file. Call `start()` in a `before` hook and `stop()` in an `after` hook;
 * `base` and `page` are set once `start()` has run. `test(name, fn)` is node:test's `test`, leaving a screenshot
 * of the page in test-results/failures/ when it fails (and the tail of the server log at `stop()`); `shot(name)`
 * saves the window as test-results/screenshots/NN-name.png; `api(method, url, body)` calls the API from the page,
 * with its session token.
 *
 * `clearShots` empties test-results/screenshots/ first: the first file of a run does, so that the folder holds
 * that run's screenshots only (the other files' names differ from its own).
 */
export function consoleUnderTest({ clearShots = false } = {}) {
  let server;
  let serverLog;
  let dataDir;
  let browser;
  let failed = false;
  let shotN = 0;

  const ctl = {
    /** `http://127.0.0.1:PORT` */
    base: undefined,
    page: undefined,

    async start() {
      assert.ok(fs.existsSync(BIN), `the airtruct binary is missing at ${BIN} (set AIRTRUCT_BIN)`);
      assert.ok(fs.existsSync(CHROMIUM), `Chromium is missing at ${CHROMIUM} (apt-get install chromium)`);
      assert.ok(fs.existsSync(path.join(ui, 'dist/index.html')), 'ui/dist is not built (npm run build)');
      if (clearShots) fs.rmSync(SHOTS, { recursive: true, force: true });
      fs.mkdirSync(SHOTS, { recursive: true });
      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airtruct-console-'));
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      serverLog = path.join(dataDir, 'server.log');
      const log = fs.openSync(serverLog, 'a');
      server = spawn(BIN, ['standalone', '--listen', `127.0.0.1:${port}`, '--data-dir', path.join(dataDir, 'data'), '--console-dir', path.join(ui, 'dist')], {
        cwd: dataDir,
        env: { ...process.env, AIRTRUCT_ADMIN_PASSWORD: PASSWORD, AIRTRUCT_CACHE_DIR: process.env.AIRTRUCT_CACHE_DIR ?? path.join(os.homedir(), '.cache/airtruct/components') },
        stdio: ['ignore', log, log],
      });
      server.on('exit', (code, signal) => fs.appendFileSync(serverLog, `\n[server exited: ${code ?? signal}]\n`));
      await waitFor(
        `${base}/healthz`,
        async () => {
          if (server.exitCode !== null) throw new Error(`the server exited:\n${fs.readFileSync(serverLog, 'utf8').slice(-2000)}`);
          const r = await fetch(`${base}/healthz`).catch(() => undefined);
          return r?.ok;
        },
        60000,
      );
      // The server compiles the built-in processor components in the background at start (about 25 s with a cold
      // component cache on 2 cores): wait for it here, so that no page test times out on it or shares the cores.
      await waitFor(
        'the built-in processors compiled',
        async () => {
          if (server.exitCode !== null) throw new Error(`the server exited:\n${fs.readFileSync(serverLog, 'utf8').slice(-2000)}`);
          return fs.readFileSync(serverLog, 'utf8').includes('built-in processors ready');
        },
        180000,
      );
      const login = await fetch(`${base}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password: PASSWORD }),
      }).then((r) => r.json());
      const warm = await fetch(`${base}/api/v1/components`, {
        headers: { authorization: `Bearer ${login.token}` },
        signal: AbortSignal.timeout(180000),
      });
      assert.equal(warm.status, 200, 'the components catalogue');
      await fetch(`${base}/api/v1/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${login.token}` } });
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
      context.setDefaultTimeout(15000);
      const page = await context.newPage();
      page.on('pageerror', (e) => console.error('page error:', e.message));
      ctl.base = base;
      ctl.page = page;
    },

    async stop() {
      await browser?.close().catch(() => {});
      if (server && server.exitCode === null) {
        server.kill('SIGTERM');
        await Promise.race([new Promise((r) => server.once('exit', r)), new Promise((r) => setTimeout(r, 5000))]);
        if (server.exitCode === null) server.kill('SIGKILL');
      }
      if (failed && serverLog && fs.existsSync(serverLog)) {
        console.error('--- server log (tail) ---\n' + fs.readFileSync(serverLog, 'utf8').slice(-4000));
      }
      if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },

    test(name, fn) {
      nodeTest(name, async () => {
        try {
          await fn();
        } catch (e) {
          failed = true;
          const dir = path.join(ui, 'test-results/failures');
          fs.mkdirSync(dir, { recursive: true });
          await ctl.page?.screenshot({ path: path.join(dir, `${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}.png`) }).catch(() => {});
          throw e;
        }
      });
    },

    /** A screenshot of the window (or, with `fullPage`, of the whole page). */
    async shot(name, { fullPage = false } = {}) {
      shotN++;
      await ctl.page.screenshot({ path: path.join(SHOTS, `${String(shotN).padStart(2, '0')}-${name}.png`), fullPage });
    },

    /** A request to the API from the page, as the signed-in user: the status and the JSON body. */
    async api(method, url, body) {
      return ctl.page.evaluate(
        async ([method, url, body]) => {
          const r = await fetch(url, {
            method,
            headers: { authorization: `Bearer ${localStorage.getItem('airtruct.token')}`, 'content-type': 'application/json' },
            body: body === undefined ? undefined : JSON.stringify(body),
          });
          return { status: r.status, body: r.status === 204 ? null : await r.json().catch(() => null) };
        },
        [method, url, body],
      );
    },
  };
  return ctl;
}
