// Browser tests of the console: the real airtruct binary (standalone) serving ui/dist, driven in headless
// Chromium through playwright-core. Run by `npm --prefix ui test` (which builds first); the server and the
// browser are started by ./helpers.mjs.
//
// AIRTRUCT_BIN: the binary (default ${CARGO_TARGET_DIR:-../target}/debug/airtruct, relative to ui/).
// CHROMIUM: the browser (default /usr/bin/chromium).
// TEMPLATE_WASM: a processor component to upload (default: guests/wasm32-wasip2/release/template.wasm in the target
// directory, $CARGO_TARGET_DIR or the binary's).
// Screenshots go to ui/test-results/screenshots/ (`npm run docs:screenshots` copies them to docs/console/).
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, PASSWORD, consoleUnderTest, escapeRe, expectText, targetDir, waitFor } from './helpers.mjs';

// The template processor is built with the binary: next to it in the same target directory.
const TEMPLATE =
  process.env.TEMPLATE_WASM ??
  [path.join(targetDir, 'guests/wasm32-wasip2/release/template.wasm'), path.resolve(path.dirname(BIN), '../guests/wasm32-wasip2/release/template.wasm')].find((f) =>
    fs.existsSync(f),
  ) ??
  path.join(targetDir, 'guests/wasm32-wasip2/release/template.wasm');

// This file runs first: its start empties the screenshots of an earlier run.
const harness = consoleUnderTest({ clearShots: true });
const { test, shot, api } = harness;
let base;
let page;

before(async () => {
  await harness.start();
  ({ base, page } = harness);
});

after(() => harness.stop());

async function number(locator) {
  const t = (await locator.innerText()).trim();
  const m = /^([\d.]+)([kMG]?)$/.exec(t);
  if (!m) return NaN;
  return Number(m[1]) * ({ '': 1, k: 1e3, M: 1e6, G: 1e9 }[m[2]]);
}

/** A counter of a node of the stream detail's pipeline drawing (`received`, `sent`, `filtered`, `failed`), 0 when not shown. */
async function nodeCounter(node, key) {
  const c = page.locator(`.flow [data-node="${node}"] .node-counters [data-counter="${key}"]`);
  if ((await c.count()) === 0) return 0;
  return Number(await c.getAttribute('data-value'));
}

/** Text as the page shows it: `code` spans without their backticks, white space collapsed. */
function plain(text) {
  return text.replace(/`/g, '').replace(/\s+/g, ' ').trim();
}

let streamUrl;

test('log in (a wrong password is refused with the API words)', async () => {
  await page.goto(`${base}/streams`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.match(page.url(), /\/login$/);
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expectText(page.getByRole('alert'), /wrong username or password/, 'the login error');
  await page.getByLabel('Password').fill(PASSWORD);
  await shot('login');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Streams' }).waitFor();
  await expectText(page.locator('.user'), /admin/, 'the user in the header');
  await page.getByText('No streams yet').waitFor();
});

test('build a stream from scratch: generate, two processors, drop; reorder; the YAML follows', async () => {
  await page.getByRole('button', { name: 'New stream' }).click();
  await page.getByRole('heading', { name: 'New stream' }).waitFor();
  await page.getByLabel('Name').first().fill('orders');
  // Input: the picker lists the catalogue's inputs.
  await page.locator('.pick[data-kind=generate]').click();
  await page.getByLabel('interval').fill('20ms');
  await page.getByLabel('payload').fill('{"id":{{seq}},"name":"user {{seq}}"}');
  // Processors: a mapping, then a filter.
  await page.getByRole('button', { name: '+ Add processor' }).click();
  await page.locator('.pick[data-kind=mapping]').click();
  await page.getByLabel('VRL program').fill('.name = upcase!(.name)');
  await page.getByRole('button', { name: '+ Add processor' }).click();
  await page.locator('.pick[data-kind=filter]').click();
  await page.getByLabel('VRL condition').fill('mod(to_int!(.id), 2) == 0');
  // Reorder: the filter first, and back; the YAML shows the order.
  const yaml = page.getByLabel('YAML config');
  await page.getByRole('button', { name: 'Move processor 2 earlier' }).click();
  await waitFor('the filter first in the YAML', async () => /processors:\n\s+- filter:[^]*- mapping:/.test(await yaml.inputValue()));
  await page.getByRole('button', { name: 'Move processor 1 later' }).click();
  await waitFor('the mapping first in the YAML', async () => /processors:\n\s+- mapping:[^]*- filter:/.test(await yaml.inputValue()));
  // Output.
  await page.getByRole('button', { name: /^Output:/ }).click();
  await page.locator('.pick[data-kind=drop]').click();
  const text = await yaml.inputValue();
  assert.match(text, /input:\n\s+generate:/);
  assert.match(text, /output:\n\s+drop: \{\}/);
  // An edit in the YAML shows in the form.
  await yaml.fill(text.replace('interval: 20ms', 'interval: 25ms'));
  await page.getByRole('button', { name: /^Input:/ }).click();
  await waitFor('the YAML edit in the form', async () => (await page.getByLabel('interval').inputValue()) === '25ms');
  await page.getByRole('button', { name: /^Processor 1:/ }).click();
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot('builder');
});

test('stream settings: batching, threads and replicas follow the server\'s stream schema', async () => {
  const r = await api('GET', '/api/v1/schema/stream');
  assert.equal(r.status, 200, 'the stream schema');
  // Subschemas are inlined; an optional one may be written `anyOf: [T, {type: null}]`, with its description and
  // default on the outside or the inside.
  const inner = (s) => (Array.isArray(s?.anyOf) ? s.anyOf.find((v) => v.type !== 'null') : s);
  const attr = (s, k) => s?.[k] ?? inner(s)?.[k];
  const prop = (s, k) => inner(s)?.properties?.[k];
  const size = prop(prop(prop(r.body, 'pipeline'), 'batch'), 'size');
  const threads = prop(prop(r.body, 'pipeline'), 'threads');
  const replicas = prop(r.body, 'replicas');
  assert.equal(attr(size, 'default'), 256, 'the default batch size');
  assert.ok(attr(threads, 'description') && attr(replicas, 'description'), 'threads and replicas are described');
  await page.getByRole('button', { name: /^Stream settings/ }).click();
  await page.getByRole('heading', { name: 'Stream settings' }).waitFor();
  const sizeInput = page.locator('[data-field="config.pipeline.batch.size"] input');
  await sizeInput.waitFor();
  assert.equal(await sizeInput.getAttribute('placeholder'), String(attr(size, 'default')), 'the default batch size shown');
  assert.equal(await sizeInput.inputValue(), '', 'the default is not written into the config');
  for (const [field, schema] of [
    ['config.pipeline.threads', threads],
    ['config.replicas', replicas],
  ]) {
    const el = page.locator(`[data-field="${field}"]`);
    await waitFor(`the description of ${field}`, async () => plain(await el.innerText()).includes(plain(attr(schema, 'description'))));
    // Its bounds too (1 to 64 for both).
    const bounds = new RegExp(`from ${attr(schema, 'minimum')} to ${attr(schema, 'maximum')}`, 'i');
    await expectText(el.locator('.bounds'), bounds, `the bounds of ${field}`);
  }
  await page.locator('[data-field="config.replicas"]').evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shot('builder-settings');
  await page.getByRole('button', { name: /^Processor 1:/ }).click();
  await page.evaluate(() => window.scrollTo(0, 0));
});

test('the test panel shows each step per message, failures highlighted', async () => {
  const samples = page.getByLabel('Sample messages, one per line');
  await samples.fill((await samples.inputValue()) + '\nnot json');
  await page.getByRole('button', { name: 'Run on 4 messages' }).click();
  const table = page.getByRole('table', { name: 'Test results' });
  await table.waitFor();
  const cell = (message, step) => table.locator(`[data-message="${message}"] [data-step="${step}"]`);
  await expectText(cell(1, 1), /USER 1/, 'message 1 after the mapping');
  await expectText(cell(1, 2), /filtered out/, 'message 1 after the filter');
  await expectText(cell(2, 2), /USER 2/, 'message 2 after the filter');
  await expectText(cell(4, 1).locator('.msg.failed .msg-error'), /mapping/, 'the failure of message 4 in the mapping');
  await table.evaluate((el) => el.scrollIntoView({ block: 'end' }));
  await shot('builder-test-panel');
  await page.evaluate(() => window.scrollTo(0, 0));
});

test('the samples saved as a test case; the stream\'s cases run, and fail with a diff when the mapping changes', async () => {
  const panel = page.getByRole('region', { name: 'Test panel' });
  await panel.getByLabel('Test case name').fill('upper-cased names, small ones filtered');
  await panel.getByRole('button', { name: 'Save as test case' }).click();
  await expectText(panel.getByRole('status').filter({ hasText: 'Saved as' }), /upper-cased names/, 'the saved notice');
  const yaml = page.getByLabel('YAML config');
  await waitFor('the case in the YAML', async () => /tests:[^]*upper-cased names, small ones filtered/.test(await yaml.inputValue()));
  await panel.getByRole('button', { name: "Run the stream's 1 test case" }).click();
  const results = panel.getByLabel('Test cases');
  await expectText(results, /1 passed, 0 failed/, 'the case passing');
  // The mapping changed: the case fails, with what differs.
  await page.getByRole('button', { name: /^Processor 1:/ }).click();
  await page.getByLabel('VRL program').fill('.name = downcase!(.name)');
  await panel.getByRole('button', { name: "Run the stream's 1 test case" }).click();
  await expectText(results, /0 passed, 1 failed/, 'the case failing');
  await expectText(results.locator('[data-case="upper-cased names, small ones filtered"]'), /payload differs/, 'the problem');
  await expectText(results.locator('.case-diff'), /- \{.*USER 2[^]*\+ \{.*user 2/, 'the diff');
  await results.evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shot('builder-test-cases');
  await page.getByLabel('VRL program').fill('.name = upcase!(.name)');
  await page.evaluate(() => window.scrollTo(0, 0));
});

test('saving as active with a broken mapping shows the error at its field and saves nothing', async () => {
  await page.getByRole('button', { name: /^Processor 1:/ }).click();
  await page.getByLabel('VRL program').fill('.name = upcase!(.name');
  await page.getByRole('button', { name: 'Save and run' }).click();
  await expectText(page.getByRole('alert', { name: 'Problems' }), /not valid/, 'the save error');
  // The error sits in the field of the mapping's program.
  const field = page.locator('.field.has-error', { has: page.getByLabel('VRL program') });
  await field.locator('.field-error').first().waitFor();
  assert.match(await field.locator('.field-error').first().innerText(), /\S/);
  await expectText(page.locator('[data-node="Processor 1"] .err-count'), /1/, 'the error count on the node');
  await field.evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shot('builder-error');
  assert.match(page.url(), /\/streams\/new$/);
  const list = await api('GET', '/api/v1/streams');
  assert.equal(list.body.length, 0, 'nothing saved');
  // Fixed, it saves and runs.
  await page.getByLabel('VRL program').fill('.name = upcase!(.name)');
  await waitFor('the field error cleared', async () => (await page.locator('.field-error').count()) === 0);
  await page.getByRole('button', { name: 'Save and run' }).click();
  await page.waitForURL(/\/streams\/(?!new$)[^/]+$/);
  streamUrl = page.url();
});

test('the detail page shows the counters rising, the worker and the chart', async () => {
  await page.locator('.page-header .badge', { hasText: 'active' }).waitFor();
  const received = page.locator('[data-stat=received] .stat-value');
  const first = await waitFor('messages received', async () => {
    const n = await number(received);
    return n > 0 ? n : 0;
  });
  await waitFor('the received counter rising', async () => (await number(received)) > first);
  await waitFor('sent counter above zero', async () => (await number(page.locator('[data-stat=sent] .stat-value'))) > 0);
  await expectText(page.getByRole('region', { name: 'Workers' }), /running/, 'the worker running it');
  // Each node of the drawing carries its component's counters: generate -> mapping -> filter (odd ids out) -> drop.
  for (const [node, what] of [
    ['input', 'messages read'],
    ['p0', 'messages into the mapping'],
    ['p1', 'messages into the filter'],
    ['output', 'messages given to the output'],
  ]) {
    await waitFor(`${what} on the node "${node}"`, async () => (await nodeCounter(node, 'received')) > 0);
  }
  await waitFor('messages handed on by the input', async () => (await nodeCounter('input', 'sent')) > 0);
  await waitFor('messages out of the mapping', async () => (await nodeCounter('p0', 'sent')) > 0);
  await waitFor('messages filtered out by the filter', async () => (await nodeCounter('p1', 'filtered')) > 0);
  await waitFor('messages confirmed by the output', async () => (await nodeCounter('output', 'sent')) > 0);
  await expectText(page.locator('.flow [data-node="p0"] .node-counters'), /in [\d,.]+[kMG]?\s*·\s*out [\d,.]+/, 'the mapping\'s in and out');
  await expectText(page.locator('.flow [data-node="p1"] .node-counters'), /filtered [\d,.]+/, 'the filter\'s filtered count');
  assert.equal(await page.locator('.flow [data-node="p0"] .node-kind').innerText(), 'mapping');
  // The chart draws a line once the history has two samples (5 s apart).
  await waitFor('the chart lines', async () => (await page.locator('.chart polyline').count()) > 0, 20000);
});

test('the Live tab shows the running stream\'s messages at each step, and one step alone', async () => {
  await page.getByRole('tab', { name: 'Live' }).click();
  const live = page.getByRole('region', { name: 'Live' });
  await expectText(live.getByRole('status'), /tapping/, 'the tap open');
  const events = live.getByRole('list', { name: 'Tapped messages' });
  // The mapping upper-cases the names; the filter lets even ids through.
  await waitFor('messages after the mapping', async () => (await events.locator('li[data-step="1"]').count()) > 0);
  await waitFor('messages after the filter', async () => (await events.locator('li[data-step="2"]').count()) > 0);
  await expectText(events.locator('li[data-step="1"]').first(), /processors\[0\] \(mapping\)[^]*USER \d+/, 'a mapped message');
  await live.getByLabel('Step').selectOption('2');
  await live.getByRole('button', { name: 'Clear' }).click();
  await waitFor('messages of step 2 only', async () => (await events.locator('li').count()) >= 3);
  assert.equal(await events.locator('li:not([data-step="2"])').count(), 0, 'only the filter\'s step');
  const ids = await events.locator('li pre').allInnerTexts();
  assert.ok(ids.every((t) => Number(JSON.parse(t).id) % 2 === 0), `only even ids after the filter: ${ids.join(' | ')}`);
  await shot('stream-live');
  await page.getByRole('tab', { name: 'Overview' }).click();
});

test('a traced message found by its id: its journey through every step, and where the filter dropped one', async () => {
  const created = await api('POST', '/api/v1/streams', {
    name: 'traced',
    config: {
      input: { generate: { interval: '50ms', payload: '{"id":{{seq}}}' } },
      pipeline: { processors: [{ mapping: '.seen = true' }, { filter: 'mod(to_int!(.id), 2) == 0' }] },
      output: { drop: {} },
      trace: { sample: 0.34 },
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  try {
    await page.goto(`${base}/streams/${created.body.id}`);
    await page.getByRole('tab', { name: 'Live' }).click();
    const live = page.getByRole('region', { name: 'Live' });
    // A traced message shows its trace_id among its metadata at the output.
    await live.getByLabel('Step').selectOption('3');
    const chip = live.locator('li[data-step="3"] .chip', { hasText: 'trace_id=' }).first();
    await waitFor('a traced message at the output', async () => (await chip.count()) > 0, 30000);
    const id = (await chip.innerText()).replace('trace_id=', '').trim();
    const journeys = page.getByRole('region', { name: 'Journeys' });
    await journeys.getByLabel('Trace id or metadata value').fill(id);
    await journeys.getByRole('button', { name: 'Find' }).click();
    const journey = journeys.getByRole('list', { name: `Journey ${id}` });
    await journey.waitFor();
    assert.deepEqual(await journey.locator('li').evaluateAll((els) => els.map((e) => e.dataset.step)), ['0', '1', '2', '3'], 'input, mapping, filter, output');
    await expectText(journey.locator('li[data-step="1"]'), /"seen":true/, 'the payload after the mapping');
    // Any traced odd id was filtered out at step 2, and its journey says so.
    const all = await api('GET', `/api/v1/streams/${created.body.id}/journeys`);
    const dropped = all.body.journeys.find((j) => j.steps.some((s) => s.filtered));
    assert.ok(dropped, `a journey that ends at the filter: ${JSON.stringify(all.body).slice(0, 500)}`);
    await journeys.getByLabel('Trace id or metadata value').fill(`trace_id=${dropped.trace_id}`);
    await journeys.getByRole('button', { name: 'Find' }).click();
    await expectText(journeys.getByRole('list', { name: `Journey ${dropped.trace_id}` }), /filtered out here/, 'where it was filtered out');
    await journeys.evaluate((el) => el.scrollIntoView({ block: 'center' }));
    await shot('stream-journey');
  } finally {
    assert.equal((await api('DELETE', `/api/v1/streams/${created.body.id}`)).status, 204);
  }
});

test('workers page: the worker is alive and runs the stream', async () => {
  await page.getByRole('navigation').getByRole('link', { name: 'Workers', exact: true }).click();
  const row = page.locator('tr[data-worker]').first();
  await expectText(row, /alive/, 'an alive worker');
  await expectText(row, /orders/, 'the stream on the worker');
  await expectText(row, /s ago/, 'its last heartbeat');
  // The one coordinator, answering this console, leads.
  const coordinators = page.getByRole('region', { name: 'Coordinators' });
  const coordinator = coordinators.locator('tr[data-coordinator]');
  assert.equal(await coordinator.count(), 1);
  await expectText(coordinator, /leader/, 'the coordinator leading');
  await expectText(coordinator, /answering you/, 'the coordinator that answers');
  await shot('workers');
});

test('drain the only worker: a warning names the stream that stops; the stream says why it waits; resume it', async () => {
  await page.getByRole('navigation').getByRole('link', { name: 'Workers', exact: true }).click();
  const row = page.locator('tr[data-worker]').first();
  await row.getByRole('button', { name: 'Drain', exact: true }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('button', { name: 'Drain worker' }).click();
  // Standalone has one worker: the server refuses first and names what would stop.
  await expectText(dialog.getByRole('alert'), /last alive worker/, 'the warning');
  await expectText(dialog.getByRole('list', { name: 'Streams that stop' }), /orders/, 'the stream that stops');
  await shot('drain-warning');
  await dialog.getByRole('button', { name: 'Drain anyway' }).click();
  await expectText(row, /draining/, 'the worker draining');
  await page.getByRole('navigation').getByRole('link', { name: 'Streams', exact: true }).click();
  await expectText(page.locator('tr[data-stream=orders] .waiting'), /every worker is draining/, 'why the stream waits');
  await shot('stream-waiting');
  await page.getByRole('navigation').getByRole('link', { name: 'Workers', exact: true }).click();
  await row.getByRole('button', { name: 'Resume', exact: true }).click();
  await expectText(row, /alive/, 'the worker alive again');
  await expectText(row, /orders/, 'the stream back on the worker', 30000);
  await page.getByRole('navigation').getByRole('link', { name: 'Streams', exact: true }).click();
  await waitFor('the stream no longer waiting', async () => (await page.locator('tr[data-stream=orders] .waiting').count()) === 0, 30000);
});

test('streams page: status, kinds, throughput and errors at a glance', async () => {
  await page.getByRole('navigation').getByRole('link', { name: 'Streams', exact: true }).click();
  const row = page.locator('tr[data-stream=orders]');
  await expectText(row, /active/, 'the status');
  await expectText(row, /generate\s*→\s*drop/, 'the kinds');
  await expectText(row.locator('td.num').first(), /\/s$/, 'the throughput');
  await shot('streams');
});

test('upload a processor: the API refusal as it words it, then a real component by drag and drop', async () => {
  await page.getByRole('navigation').getByRole('link', { name: 'Processors', exact: true }).click();
  await page.getByText('No processor uploaded yet').waitFor();
  await page.getByLabel('Choose a .wasm file').setInputFiles({ name: 'broken.wasm', mimeType: 'application/wasm', buffer: Buffer.from('not a component') });
  await page.getByRole('button', { name: 'Upload', exact: true }).click();
  await expectText(page.getByRole('alert'), /Upload refused: .*not a usable processor/, 'the upload refusal');
  // The real one, dropped on the zone.
  assert.ok(fs.existsSync(TEMPLATE), `the template component is missing at ${TEMPLATE}`);
  const bytes = fs.readFileSync(TEMPLATE).toString('base64');
  const dt = await page.evaluateHandle((b64) => {
    const bin = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const d = new DataTransfer();
    d.items.add(new File([bin], 'template.wasm', { type: 'application/wasm' }));
    return d;
  }, bytes);
  await page.getByTestId('dropzone').dispatchEvent('drop', { dataTransfer: dt });
  await page.getByLabel('Name', { exact: false }).first().fill('prefix');
  await page.getByLabel('Description').fill('Puts a prefix in front of every payload');
  await page.getByRole('button', { name: 'Upload', exact: true }).click();
  const detail = page.getByRole('region', { name: 'Processor prefix' });
  await detail.waitFor();
  await expectText(detail, /Text put in front of every payload/, 'its config schema');
  await expectText(page.getByRole('table', { name: 'Processor versions' }), /v1/, 'its versions');
  await expectText(detail, /No stream uses it/, 'no user yet');
});

test('use the uploaded processor in the stream', async () => {
  await page.goto(streamUrl);
  await page.getByRole('button', { name: 'Edit' }).click();
  await page.getByRole('heading', { name: 'Edit orders' }).waitFor();
  await page.getByRole('button', { name: '+ Add processor' }).click();
  await page.locator('.pick[data-kind="u:prefix"]').click();
  await page.getByRole('region', { name: 'Component' }).getByLabel('prefix').fill('>> ');
  await page.getByRole('button', { name: 'Run on 3 messages' }).click();
  const table = page.getByRole('table', { name: 'Test results' });
  await expectText(table.locator('[data-message="2"] [data-step="3"]'), /^>> \{/, 'the prefix after step 3');
  await expectText(table.locator('[data-message="2"] [data-step="3"]'), /prefixed=true/, 'its metadata');
  await table.evaluate((el) => el.scrollIntoView({ block: 'end' }));
  await shot('builder-uploaded');
  await page.getByRole('button', { name: 'Save and run' }).click();
  await page.waitForURL(streamUrl);
  await expectText(page.locator('.page-header .sub'), /version 2/, 'version 2');
  await expectText(page.locator('.flow'), /prefix v1/, 'the pipeline with the uploaded processor');
  await page.getByRole('navigation').getByRole('link', { name: 'Processors', exact: true }).click();
  await page.getByRole('link', { name: 'prefix' }).click();
  await expectText(page.getByRole('region', { name: 'Processor prefix' }), /orders/, 'the stream that uses it');
  await shot('processors');
});

test('roll back a version, with the diff between versions', async () => {
  await page.goto(streamUrl);
  const versions = page.getByRole('region', { name: 'Versions' });
  await expectText(versions.locator('.diff-line.add'), /wasm:/, 'the added processor in the diff');
  await expectText(versions.locator('.diff-line.add'), /prefix: ">> "|prefix: '>> '|prefix: >>/, 'its config in the diff');
  await versions.locator('tr[data-version="1"]').getByRole('button', { name: 'Roll back' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Roll back to version 1' }).click();
  await expectText(page.locator('.page-header .sub'), /version 3/, 'version 3');
  await waitFor('the uploaded processor gone from the pipeline', async () => !/prefix/.test(await page.locator('.flow').innerText()));
  await waitFor('the chart lines', async () => (await page.locator('.chart polyline').count()) > 0);
  await expectText(page.locator('[data-stat=received] .stat-sub'), /\/s$/, 'the rate of messages received');
  await shot('stream-detail');
});

test('pause the stream', async () => {
  await page.getByRole('button', { name: 'Pause' }).click();
  await page.locator('.page-header .badge', { hasText: 'paused' }).waitFor();
  await page.getByRole('button', { name: 'Resume' }).waitFor();
  await page.getByText('No worker runs it while it is paused.').waitFor({ timeout: 15000 });
});

test('save an invalid draft as paused, then delete it with a confirmation', async () => {
  await page.getByRole('navigation').getByRole('link', { name: 'Streams', exact: true }).click();
  await page.getByRole('button', { name: 'New stream' }).click();
  await page.getByLabel('Name').first().fill('draft');
  await page.getByLabel('YAML config').fill('input:\n  generate: { count: many }\noutput:\n  drop: {}\n');
  await page.getByRole('radio', { name: 'Paused' }).click();
  await page.getByRole('button', { name: 'Save as paused' }).click();
  await page.waitForURL(/\/streams\/(?!new$)[^/]+$/);
  await page.locator('.page-header .badge', { hasText: 'paused' }).waitFor();
  await page.getByRole('link', { name: 'All streams' }).click();
  const row = page.locator('tr[data-stream=draft]');
  await row.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog').getByText('cannot be undone').waitFor();
  await shot('delete-confirmation');
  await page.getByRole('dialog').getByRole('button', { name: 'Delete stream' }).click();
  await waitFor('the draft gone', async () => (await row.count()) === 0);
  await page.locator('tr[data-stream=orders]').waitFor();
});

test('secrets: create, replace, delete; names only', async () => {
  await page.getByRole('navigation').getByRole('link', { name: 'Secrets', exact: true }).click();
  await page.getByLabel('Name').fill('db_password');
  await page.getByLabel('Value').fill('s3cret');
  await page.getByRole('button', { name: 'Create secret' }).click();
  const row = page.locator('tr[data-secret=db_password]');
  await expectText(row, /\$\{secret:db_password\}/, 'the reference');
  assert.ok(!(await page.content()).includes('s3cret'), 'the value is never shown');
  await row.getByRole('button', { name: 'Replace' }).click();
  await row.getByLabel('New value of db_password').fill('n3w');
  await row.getByRole('button', { name: 'Save' }).click();
  await expectText(page.locator('.banner.success'), /Replaced db_password/, 'the replacement');
  await shot('secrets');
  await row.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete secret' }).click();
  await waitFor('the secret gone', async () => (await row.count()) === 0);
});

test('files: one uploaded on the page, listed with its size and path, replaced, then deleted', async () => {
  await page.getByRole('navigation').getByRole('link', { name: 'Files', exact: true }).click();
  await page.getByRole('heading', { name: 'Files' }).waitFor();
  await page.getByText('No file uploaded yet').waitFor();
  const upload = page.getByRole('region', { name: 'Upload a file' });
  const csv = 'id,name\n1,one\n2,two\n';
  await upload.getByLabel('Choose a file to upload').setInputFiles({ name: 'lookup.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  assert.equal(await upload.getByLabel('Name').inputValue(), 'lookup.csv', "the file's own name");
  // A name the API refuses, in its words.
  const refused = await api('PUT', '/api/v1/files/.lookup.csv', 'x');
  assert.equal(refused.status, 400, 'a name starting with a dot');
  await upload.getByLabel('Name').fill('.lookup.csv');
  await upload.getByRole('button', { name: 'Upload', exact: true }).click();
  await expectText(upload.getByRole('alert'), new RegExp(`Upload refused: ${escapeRe(refused.body.error)}`), 'the refusal as the API words it');
  await upload.getByLabel('Name').fill('lookup.csv');
  await upload.getByRole('button', { name: 'Upload', exact: true }).click();
  await expectText(upload.locator('.banner.success'), /Uploaded lookup\.csv/, 'the upload');
  const listed = (await api('GET', '/api/v1/files')).body;
  assert.equal(listed.length, 1, `one file listed: ${JSON.stringify(listed)}`);
  assert.equal(listed[0].name, 'lookup.csv');
  assert.equal(listed[0].size, Buffer.byteLength(csv));
  assert.match(listed[0].path, /^\/.*\/lookup\.csv$/, 'an absolute path');
  const row = page.locator('tr[data-file="lookup.csv"]');
  await expectText(row, new RegExp(`${Buffer.byteLength(csv)} B`), 'its size');
  await expectText(row.locator('code'), new RegExp(`^${escapeRe(listed[0].path)}$`), 'its path');
  await row.getByRole('button', { name: 'Copy the path of lookup.csv' }).waitFor();
  await row.getByRole('link', { name: 'Download' }).waitFor();
  await shot('files');
  // Replaced: the same name, other bytes.
  const bigger = `${csv}3,three\n`;
  await row.getByLabel('Replace lookup.csv with a file').setInputFiles({ name: 'other.csv', mimeType: 'text/csv', buffer: Buffer.from(bigger) });
  assert.equal(await upload.getByLabel('Name').inputValue(), 'lookup.csv', 'the name of the row replaced');
  await upload.getByRole('button', { name: 'Replace', exact: true }).click();
  await expectText(upload.locator('.banner.success'), /Replaced lookup\.csv/, 'the replacement');
  await expectText(row, new RegExp(`${Buffer.byteLength(bigger)} B`), 'the new size');
  // Deleted after a confirmation.
  await row.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog').getByText(listed[0].path).waitFor();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete file' }).click();
  await waitFor('the file gone', async () => (await row.count()) === 0);
  await page.getByText('No file uploaded yet').waitFor();
  assert.deepEqual((await api('GET', '/api/v1/files')).body, [], 'no file left');
});

test('an expired session returns to the login page; log out', async () => {
  await page.getByRole('navigation').getByRole('link', { name: 'Streams', exact: true }).click();
  await page.locator('tr[data-stream=orders]').waitFor();
  // The session ends on the server (as when it expires); the next poll gets a 401.
  const r = await api('POST', '/api/v1/auth/logout');
  assert.equal(r.status, 204);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByText('Your session has ended').waitFor();
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('tr[data-stream=orders]').waitFor();
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.goto(`${base}/workers`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
});

// Users and roles. These run last: they sign in and out as other users, and end signed in as the admin.

const VIEWER = 'viewer1';
const VIEWER_FIRST_PASSWORD = 'viewer1-first-password';
const VIEWER_PASSWORD = 'viewer1-password';

/** Signs in from the login page (the session must have ended) and waits for the name and role in the header. */
async function signIn(username, password, role) {
  // A Log out just clicked may still be waiting for the API: leaving the page then would keep its token.
  await waitFor('the session ended', () => page.evaluate(() => localStorage.getItem('airtruct.token') === null));
  await page.goto(`${base}/login`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expectText(page.locator('.topbar .user'), new RegExp(`${escapeRe(username)}\\s+${role}`), `${username} signed in, with the role ${role}`);
}

/** Buttons of the page that change something; none may show for a viewer. */
const CHANGES =
  /^(New stream|Edit|Validate|Save|Save and run|Save as paused|\+ Add processor|Delete|Pause|Resume|Roll back|Upload|Choose a file|Choose another file|Create secret|Replace secret|Replace|Drain|Drain anyway|Create user|Reset password|Disable|Enable)$/;

/** The page shows nothing that changes anything: no such button, no form, no file or password field. */
async function assertReadOnly(where) {
  const labels = (await page.locator('main button, main label.btn, main [role=button]').allInnerTexts()).map((t) => t.trim());
  assert.deepEqual(
    labels.filter((t) => CHANGES.test(t)),
    [],
    `no control that changes anything on ${where} (buttons: ${JSON.stringify(labels)})`,
  );
  assert.equal(await page.locator('main form').count(), 0, `no form on ${where}`);
  assert.equal(await page.locator('main input[type=file], main input[type=password]').count(), 0, `no file or password field on ${where}`);
}

test('users: the admin creates a viewer, changes its role, disables and enables it, resets its password', async () => {
  // The session tests end signed out.
  await signIn('admin', PASSWORD, 'admin');
  await page.getByRole('navigation').getByRole('link', { name: 'Users', exact: true }).click();
  await page.getByRole('heading', { name: 'Users' }).waitFor();
  await expectText(page.locator('tr[data-user=admin]'), /admin[^]*you/, 'the admin listed as you');
  const form = page.getByRole('form', { name: 'New user' });
  // A password too short is refused in the API's own words.
  const refused = await api('POST', '/api/v1/users', { username: 'short1', password: 'short', role: 'viewer' });
  assert.equal(refused.status, 400, 'a password under 8 characters');
  await form.getByLabel('Name').fill('short1');
  await form.getByLabel('Password').fill('short');
  await form.getByRole('button', { name: 'Create user' }).click();
  await expectText(page.getByRole('alert'), new RegExp(`Not created: ${escapeRe(refused.body.error)}`), 'the refusal as the API words it');
  // A viewer.
  await form.getByLabel('Name').fill(VIEWER);
  await form.getByLabel('Password').fill(VIEWER_FIRST_PASSWORD);
  await form.getByLabel('Role').selectOption('viewer');
  await form.getByRole('button', { name: 'Create user' }).click();
  await expectText(page.locator('.banner.success'), /Created viewer1 as a viewer/, 'the creation');
  const row = page.locator(`tr[data-user=${VIEWER}]`);
  await expectText(row, /active/, 'the new user listed, active');
  assert.equal(await row.getByLabel(`Role of ${VIEWER}`).inputValue(), 'viewer');
  const listed = await api('GET', '/api/v1/users');
  assert.ok(
    listed.body.some((u) => u.username === VIEWER && u.role === 'viewer' && u.disabled === false),
    `the API lists ${VIEWER}: ${JSON.stringify(listed.body)}`,
  );
  await shot('users');
  // Its role, up and back down.
  await row.getByLabel(`Role of ${VIEWER}`).selectOption('editor');
  await expectText(page.locator('.banner.success'), /viewer1 is now an editor/, 'the new role');
  await row.getByLabel(`Role of ${VIEWER}`).selectOption('viewer');
  await expectText(page.locator('.banner.success'), /viewer1 is now a viewer/, 'the role back');
  // Disabled after a confirmation, then enabled.
  await row.getByRole('button', { name: 'Disable' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Disable user' }).click();
  await expectText(row, /disabled/, 'the user disabled');
  const login = (password) =>
    fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: VIEWER, password }) });
  assert.notEqual((await login(VIEWER_FIRST_PASSWORD)).status, 200, 'a disabled user cannot sign in');
  await row.getByRole('button', { name: 'Enable' }).click();
  await expectText(row, /active/, 'the user enabled');
  // A new password, set by the admin.
  await row.getByRole('button', { name: 'Reset password' }).click();
  await page.getByRole('dialog').getByLabel('New password').fill(VIEWER_PASSWORD);
  await page.getByRole('dialog').getByRole('button', { name: 'Set password' }).click();
  await expectText(page.locator('.banner.success'), /viewer1 has a new password/, 'the password reset');
  const r = await login(VIEWER_PASSWORD);
  assert.equal(r.status, 200, 'the new password signs in');
  const { token } = await r.json();
  await fetch(`${base}/api/v1/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
});

test('account: an API token with a lower role, shown once, then revoked', async () => {
  await page.locator('.topbar .user').click();
  await page.getByRole('heading', { name: 'Account' }).waitFor();
  await page.locator('tr[data-token=session]', { hasText: 'this session' }).waitFor();
  const form = page.getByRole('form', { name: 'New token' });
  // '' is the owner's role, whatever it becomes; then the roles up to the admin's own.
  assert.deepEqual(await form.getByLabel('Role').locator('option').evaluateAll((os) => os.map((o) => o.value)), ['', 'viewer', 'editor', 'admin'], 'an admin may give any role');
  await form.getByLabel('Name').fill('ci');
  await form.getByLabel('Expires in').fill('30d');
  await form.getByLabel('Role').selectOption('viewer');
  await form.getByRole('button', { name: 'Create token' }).click();
  const shown = page.getByLabel('The new token');
  const token = await waitFor('the token shown', async () => (await shown.count()) > 0 && (await shown.inputValue()));
  const row = page.locator('tr[data-token=ci]');
  await expectText(row, /viewer/, 'the token listed with its role');
  assert.doesNotMatch(await row.innerText(), /never/, 'it expires');
  await shot('account');
  // It reads, and changes nothing: its role is viewer.
  const bearer = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  assert.equal((await fetch(`${base}/api/v1/streams`, { headers: bearer })).status, 200, 'the token reads');
  const put = await fetch(`${base}/api/v1/secrets/from_token`, { method: 'PUT', headers: bearer, body: JSON.stringify({ value: 'x' }) });
  assert.equal(put.status, 403, 'a viewer token cannot set a secret');
  await page.getByRole('button', { name: 'Done' }).click();
  assert.equal(await shown.count(), 0, 'the token is shown only once');
  await row.getByRole('button', { name: 'Revoke' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke token' }).click();
  await waitFor('the token gone', async () => (await row.count()) === 0);
  assert.equal((await fetch(`${base}/api/v1/streams`, { headers: bearer })).status, 401, 'a revoked token is refused');
});

test('a viewer reads every page and finds nothing that changes anything', async () => {
  // Something on each page that an editor could change: the stream, the processor, a worker, a secret and a file
  // (the secrets and files tests deleted their own).
  assert.equal((await api('PUT', '/api/v1/secrets/viewer_check', { value: 'not for viewers' })).status, 201);
  assert.equal((await api('PUT', '/api/v1/files/viewer_check.csv', 'a,b')).status, 201);
  const orders = (await api('GET', '/api/v1/streams')).body.find((s) => s.name === 'orders');
  assert.ok(orders, 'the stream orders');
  await page.getByRole('button', { name: 'Log out' }).click();
  await signIn(VIEWER, VIEWER_PASSWORD, 'viewer');
  const nav = page.getByRole('navigation');
  await nav.getByRole('link', { name: 'Audit', exact: true }).waitFor();
  assert.equal(await nav.getByRole('link', { name: 'Users', exact: true }).count(), 0, 'no Users link for a viewer');

  await nav.getByRole('link', { name: 'Streams', exact: true }).click();
  const streamRow = page.locator('tr[data-stream=orders]');
  await expectText(streamRow, /paused|active/, 'the stream listed with its status');
  await assertReadOnly('the streams page');

  await streamRow.getByRole('link', { name: 'orders' }).click();
  await page.getByRole('heading', { name: /orders/ }).waitFor();
  const versions = page.getByRole('region', { name: 'Versions' });
  await versions.locator('tr[data-version="1"]').waitFor();
  await expectText(versions.locator('tr[data-version="1"] .saved-by'), /^admin$/, 'who saved version 1');
  await expectText(versions.locator('.diff-line.add, .diff-line.del'), /\S/, 'the diff between versions');
  await assertReadOnly('the stream page');
  await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  await shot('stream-detail-viewer');

  for (const p of [`/streams/${orders.id}/edit`, '/streams/new']) {
    await page.goto(`${base}${p}`);
    await expectText(page.getByRole('note'), /Your role, viewer, can read streams but not/, `the builder refused at ${p}`);
    await assertReadOnly(p);
  }

  await nav.getByRole('link', { name: 'Processors', exact: true }).click();
  await page.getByRole('link', { name: 'prefix' }).click();
  await expectText(page.getByRole('table', { name: 'Processor versions' }), /v1/, 'the processor\'s versions');
  assert.equal(await page.getByTestId('dropzone').count(), 0, 'no upload');
  await assertReadOnly('the processors page');

  await nav.getByRole('link', { name: 'Secrets', exact: true }).click();
  await expectText(page.locator('tr[data-secret=viewer_check]'), /\$\{secret:viewer_check\}/, 'the secret listed');
  assert.ok(!(await page.content()).includes('not for viewers'), 'no secret value');
  await assertReadOnly('the secrets page');

  await nav.getByRole('link', { name: 'Files', exact: true }).click();
  const fileRow = page.locator('tr[data-file="viewer_check.csv"]');
  await expectText(fileRow, /viewer_check\.csv/, 'the file listed');
  await fileRow.getByRole('link', { name: 'Download' }).waitFor();
  assert.equal(await page.getByTestId('dropzone').count(), 0, 'no upload');
  await assertReadOnly('the files page');

  await nav.getByRole('link', { name: 'Workers', exact: true }).click();
  await expectText(page.locator('tr[data-worker]').first(), /alive/, 'an alive worker');
  await assertReadOnly('the workers page');

  await page.goto(`${base}/users`);
  await expectText(page.getByRole('note'), /Your role, viewer, cannot manage users/, 'the users page refused');
  assert.equal(await page.getByRole('table', { name: 'Users' }).count(), 0, 'no user list');

  // The audit trail: the admin's creation of this user.
  await nav.getByRole('link', { name: 'Audit', exact: true }).click();
  const trail = page.getByRole('table', { name: 'Audit trail' });
  await trail.waitFor();
  await page.getByLabel('Filter').fill(`user.create ${VIEWER}`);
  const created = trail.locator(`tr[data-action="user.create"][data-target="${VIEWER}"]`);
  await expectText(created, /admin/, 'the admin created viewer1');
  for (const t of await trail.locator('tbody tr').allInnerTexts()) assert.match(t, /user\.create[^]*viewer1/, 'only what the filter matches');
  await page.getByLabel('Filter').fill('');
  await waitFor('the whole trail back', async () => (await trail.locator('tbody tr[data-action="user.update"]').count()) > 0);
  await shot('audit');

  // Every role changes its own password, and makes tokens no higher than its role.
  await page.locator('.topbar .user').click();
  await page.getByRole('heading', { name: 'Account' }).waitFor();
  const roles = page.getByRole('form', { name: 'New token' }).getByLabel('Role').locator('option');
  assert.deepEqual(await roles.evaluateAll((os) => os.map((o) => o.value)), ['', 'viewer'], 'a viewer gives only viewer');
  const pw = page.getByRole('form', { name: 'Change password' });
  await pw.getByLabel('Current password').fill(VIEWER_PASSWORD);
  await pw.getByLabel('New password', { exact: true }).fill(`${VIEWER_PASSWORD}-2`);
  await pw.getByLabel('New password again').fill(`${VIEWER_PASSWORD}-2`);
  await pw.getByRole('button', { name: 'Change password' }).click();
  await expectText(page.locator('.banner.success'), /Your password is changed/, 'the password changed');

  // Back to the admin.
  await page.getByRole('button', { name: 'Log out' }).click();
  await signIn(VIEWER, `${VIEWER_PASSWORD}-2`, 'viewer');
  await page.getByRole('button', { name: 'Log out' }).click();
  await signIn('admin', PASSWORD, 'admin');
});
