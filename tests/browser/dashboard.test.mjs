// tests/browser/dashboard.test.mjs — the dashboard in a real browser (Debian's chromium, driven
// by playwright-core) against a real `taskpool serve --http`: the overview shows the counts, a
// failed task shows its error, clicking retry makes it run and turn done, filtering by status
// works. Any JS error or console error on the page fails the test. A screenshot goes to
// $TASKPOOL_BROWSER_OUT (the build directory); with TASKPOOL_DOCS_SCREENSHOT=PATH also there.
//
//   TASKPOOL_BIN=build/release/taskpool TASKPOOL_BROWSER_OUT=build/release node tests/browser/dashboard.test.mjs
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const bin = process.env.TASKPOOL_BIN;
const out = process.env.TASKPOOL_BROWSER_OUT || '.';
if (!bin) throw new Error('set TASKPOOL_BIN to the taskpool binary');
const dir = mkdtempSync(join(tmpdir(), 'taskpool-browser-'));
const db = join(dir, 'tasks.db');
const token = 'browser-test-token';
const errors = [];
let daemon, browser;

function fail(msg) {
  throw new Error(msg);
}
function cli(...args) {
  return execFileSync(bin, ['--db', db, ...args], { encoding: 'utf8' }).trim();
}
async function until(what, pred, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > end) fail('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

try {
  // Tasks: three that succeed, one that fails on its first run only (a marker file).
  for (let i = 0; i < 3; ++i) cli('add', '--type', 'exec', '--payload', JSON.stringify({ argv: ['true'] }));
  const mark = join(dir, 'ran-once');
  const flaky = cli('add', '--type', 'exec', '--payload',
    JSON.stringify({ argv: ['sh', '-c', `test -f ${mark} || { touch ${mark}; echo "disk on fire" >&2; exit 3; }`] }));
  cli('add', '--type', 'memo', '--in', '1h', '--unique-key', 'memo:alice', '--creator', 'alice');

  daemon = spawn(bin, ['--db', db, 'serve', '--threads', '2', '--poll', '50ms', '--http', '127.0.0.1:0', '--http-token', token],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  let log = '';
  daemon.stdout.on('data', (d) => { log += d; });
  await until('the dashboard line', () => /dashboard: (http:\/\/\S+)/.test(log));
  const url = log.match(/dashboard: (http:\/\/\S+)/)[1];
  if (!url.endsWith('?token=' + token)) fail('dashboard line without the token: ' + url);

  // A fresh profile (--user-data-dir) per run: playwright passes it for a persistent context.
  browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: process.env.TASKPOOL_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1200, height: 760 },
  });
  const page = browser.pages()[0] || (await browser.newPage());
  page.on('console', (m) => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
  page.on('pageerror', (e) => errors.push('page error: ' + e.message));
  await page.goto(url);

  // The token leaves the address bar at once.
  await until('the token to leave the URL', async () => !page.url().includes('token='));
  // Overview: the counts (3 done + the flaky one failed, the memo waiting).
  await until('the overview counts', async () =>
    (await page.textContent('#count-done')) === '3' && (await page.textContent('#count-failed')) === '1' &&
    (await page.textContent('#count-waiting')) === '1');

  // Tasks: filter by failed; the failed task shows its error.
  await page.click('#tabs button[data-tab=tasks]');
  await page.selectOption('#f-status', 'failed');
  await until('one failed row', async () => (await page.$$('#task-rows tr')).length === 1 &&
    (await page.textContent('#task-rows tr td:nth-child(3)')) === 'failed');
  await page.click('#task-rows tr');
  await until('the error in the detail', async () => ((await page.textContent('#d-error')) || '').includes('exit code 3'));
  if ((await page.textContent('#d-id')) !== flaky) fail('detail shows task ' + (await page.textContent('#d-id')) + ', not ' + flaky);
  if (!((await page.textContent('#d-error')) || '').includes('disk on fire')) fail('the error does not show the output');

  // Retry: it runs again and turns done.
  await page.click('#d-retry');
  await until('the retried task to be done', async () => (await page.textContent('#d-status')) === 'done');

  // Filtering by status: done shows exactly the four done tasks.
  await page.selectOption('#f-status', 'done');
  await until('four done rows', async () => {
    const cells = await page.$$eval('#task-rows tr td:nth-child(3)', (tds) => tds.map((t) => t.textContent));
    return cells.length === 4 && cells.every((c) => c === 'done');
  });
  await page.selectOption('#f-status', 'waiting');
  await until('one waiting row', async () => (await page.$$('#task-rows tr')).length === 1);

  // The other views render without errors.
  for (const tab of ['repeating', 'nodes', 'leases', 'keys', 'overview']) {
    await page.click(`#tabs button[data-tab=${tab}]`);
    await page.waitForTimeout(300);
  }
  await until('the key table', async () => {
    await page.click('#tabs button[data-tab=keys]');
    return ((await page.textContent('#key-rows')) || '').includes('memo:alice');
  });
  await page.click('#tabs button[data-tab=overview]');
  await until('the overview after the retry', async () => (await page.textContent('#count-done')) === '4');
  await page.screenshot({ path: join(out, 'dashboard.png') });
  if (process.env.TASKPOOL_DOCS_SCREENSHOT) {
    await page.setViewportSize({ width: 1000, height: 560 });
    await page.click('#tabs button[data-tab=tasks]');
    await page.selectOption('#f-status', '');
    await until('all rows', async () => (await page.$$('#task-rows tr')).length === 5);
    await page.click(`#task-rows tr[data-id="${flaky}"]`);
    await page.waitForTimeout(500);
    await page.screenshot({ path: process.env.TASKPOOL_DOCS_SCREENSHOT });
  }
  if (errors.length) fail(errors.join('\n'));
  console.log('browser test passed; screenshot ' + join(out, 'dashboard.png'));
} finally {
  if (browser) await browser.close();
  if (daemon) daemon.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
