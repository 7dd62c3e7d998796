// Browser tests of a stream's resources in the console: the builder's Resources editor (a memory cache and an HTTP
// grant declared, a rate limit added and removed, a cache renamed with the processor naming it following), the
// processors' resource selects (a `dedupe` and an `http` processor choosing them), saved, read back through the API
// and reopened; validation errors at a resource's field and at a processor's resource; the YAML view writing
// `resources:` and the editor following; the Processors page showing an uploaded 0.2.0 processor's contract and the
// capabilities it asks for (and a 0.1.0 one's), and its `grants` chosen among the declared resources; and the test
// panel's Allow side effects, sent as `allow_side_effects`, without which a cache write fails the message. Run by
// `npm --prefix ui test`; the server and the browser are started by ./helpers.mjs.
//
// FIXTURES_DIR: where the fixture components are (default: guests/wasm32-wasip2/release in the target directory,
// $CARGO_TARGET_DIR or the binary's): fixture_seen.wasm (contract 0.2.0, asks for cache) and fixture_v1.wasm (0.1.0).
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { BIN, PASSWORD, consoleUnderTest, escapeRe, expectText, targetDir, waitFor } from './helpers.mjs';

const FIXTURES =
  process.env.FIXTURES_DIR ??
  [path.join(targetDir, 'guests/wasm32-wasip2/release'), path.resolve(path.dirname(BIN), '../guests/wasm32-wasip2/release')].find((d) =>
    fs.existsSync(path.join(d, 'fixture_seen.wasm')),
  ) ??
  path.join(targetDir, 'guests/wasm32-wasip2/release');

const harness = consoleUnderTest();
const { test, shot, api } = harness;
let base;
let page;

before(async () => {
  await harness.start();
  ({ base, page } = harness);
});

after(() => harness.stop());

/** The form element of the field at `path` (a `data-field`). */
const field = (path) => page.locator(`[data-field="${path}"]`);
/** The text box of the field at `path`. */
const box = (path) => field(path).locator('input, textarea').first();
/** The select of the field at `path`. */
const select = (path) => field(path).locator('select').first();
/** A resource's card in the Resources editor (`caches.seen`). */
const card = (at) => page.locator(`[data-resource="${at}"]`);
const yaml = () => page.getByLabel('YAML config');
const resourcesButton = () => page.locator('.pipeline-foot').getByRole('button', { name: /^Resources/ });
const openProcessor = (n) => page.getByRole('button', { name: new RegExp(`^Processor ${n}:`) }).click();

async function newStream(name) {
  await page.getByRole('navigation').getByRole('link', { name: 'Streams', exact: true }).click();
  await page.getByRole('button', { name: 'New stream' }).click();
  await page.getByRole('heading', { name: 'New stream' }).waitFor();
  if (name) await page.locator('#stream-name').fill(name);
}

/** Declares a resource in the editor's **Add a resource** form (the editor open). */
async function addResource(section, name, kind) {
  const add = page.getByRole('group', { name: 'Add a resource' });
  await add.getByLabel('Section').selectOption(section);
  if (kind) await add.getByLabel('Kind').selectOption(kind);
  await add.getByLabel('Name').fill(name);
  await add.getByRole('button', { name: 'Add', exact: true }).click();
  await card(`${section}.${name}`).waitFor();
}

/** Adds a processor of `kind` at the end of the pipeline. */
async function addProcessor(kind) {
  await page.getByRole('button', { name: '+ Add processor' }).click();
  await page.getByRole('list', { name: 'Processor kinds' }).locator(`.pick[data-kind="${kind}"]`).click();
}

/** The options of a select, as their texts. */
const optionTexts = (l) => l.locator('option').evaluateAll((els) => els.map((e) => e.textContent));

const RESOURCES = 'config.resources';
let streamId;
let expected;

test('sign in', async () => {
  await page.goto(`${base}/streams`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Streams' }).waitFor();
});

test("the catalogue describes resources: their schema, and the processors' options that name one", async () => {
  const catalogue = (await api('GET', '/api/v1/components')).body;
  assert.deepEqual(Object.keys(catalogue.resources.properties).sort(), ['caches', 'http', 'rate_limits', 'sql']);
  const marked = (kind) => catalogue.processors.find((k) => k.kind === kind)?.config_schema?.properties?.resource?.['x-airtruct-resource'];
  assert.deepEqual(
    ['http', 'sql', 'cache', 'dedupe', 'rate_limit'].map(marked),
    ['http', 'sql', 'cache', 'cache', 'rate_limit'],
    "each resource option's capability",
  );
  assert.ok(catalogue.processors.find((k) => k.kind === 'wasm').config_schema.properties.grants, "wasm's grants");
});

test('a memory cache and an HTTP grant declared in the Resources editor, chosen in a dedupe and an http processor, saved and reopened', async () => {
  await newStream('resourced');
  await page.locator('.pick[data-kind=generate]').click();
  await box('config.input.generate.count').fill('3');
  await box('config.input.generate.interval').fill('20ms');
  await box('config.input.generate.payload').fill('{"id":{{seq}}}');
  await page.getByRole('button', { name: /^Output:/ }).click();
  await page.locator('.pick[data-kind=drop]').click();

  // A dedupe first: no cache declared yet, the select says so and leads to the Resources editor.
  await addProcessor('dedupe');
  const dedupe = 'config.pipeline.processors.0.dedupe.resource';
  await expectText(field(dedupe), /declares no cache yet/, 'the hint that no cache is declared');
  assert.deepEqual(await optionTexts(select(dedupe)), ['— no cache declared —', 'another name…']);
  await field(dedupe).getByRole('button', { name: 'declare one in Resources' }).click();
  await page.getByRole('heading', { name: 'Resources', exact: true }).waitFor();
  for (const section of ['Caches', 'SQL connections', 'HTTP grants', 'Rate limits']) {
    await expectText(page.getByRole('region', { name: section }), /None declared/, `the empty ${section} section`);
  }

  // A memory cache, its capacity set in its form; an HTTP grant with one host.
  await addResource('caches', 'seen', 'memory');
  assert.equal(await card('caches.seen').getByLabel('seen kind').inputValue(), 'memory');
  await box(`${RESOURCES}.caches.seen.memory.capacity`).fill('100');
  await addResource('http', 'api');
  await field(`${RESOURCES}.http.api.hosts`).getByRole('button', { name: 'Add item' }).click();
  await box(`${RESOURCES}.http.api.hosts.0`).fill('api.example.com');
  // A name already taken is refused in the form, whatever the section.
  const add = page.getByRole('group', { name: 'Add a resource' });
  await add.getByLabel('Section').selectOption('sql');
  await add.getByLabel('Name').fill('seen');
  await expectText(add, /"seen" is already declared/, 'a name taken');
  assert.ok(await add.getByRole('button', { name: 'Add', exact: true }).isDisabled());
  await add.getByLabel('Name').fill('');
  await waitFor('the resources in the YAML', async () =>
    /resources:\n\s+caches:\n\s+seen:\n\s+memory:\n\s+capacity: 100\n\s+http:\n\s+api:\n\s+hosts:\n\s+- api\.example\.com/.test(await yaml().inputValue()),
  );
  await expectText(resourcesButton(), /^Resources \(2\)$/, 'two resources on the button');
  await page.getByRole('region', { name: 'Component' }).evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await shot('builder-resources');

  // The dedupe's select offers the cache, not the HTTP grant.
  await openProcessor(1);
  assert.deepEqual(await optionTexts(select(dedupe)), ['— choose a cache —', 'seen', 'another name…']);
  await select(dedupe).selectOption('seen');
  await box('config.pipeline.processors.0.dedupe.key').fill('{id}');
  assert.equal(await field(dedupe).locator('.resource-hint').count(), 0, 'no hint once chosen');

  // An http processor: its select offers the HTTP grant only.
  await addProcessor('http');
  const http = 'config.pipeline.processors.1.http.resource';
  assert.deepEqual(await optionTexts(select(http)), ['— choose an HTTP grant —', 'api', 'another name…']);
  await select(http).selectOption('api');
  await box('config.pipeline.processors.1.http.url').fill('https://api.example.com/items/{id}');
  await field(http).evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shot('builder-resource-select');

  await page.getByRole('button', { name: 'Validate' }).click();
  await expectText(page.locator('.banner.success'), /The config is valid/, 'valid');
  await page.getByRole('button', { name: 'Save and run' }).click();
  await page.waitForURL(/\/streams\/(?!new$)[^/]+$/);
  streamId = new URL(page.url()).pathname.split('/').pop();
  expected = {
    input: { generate: { count: 3, interval: '20ms', payload: '{"id":{{seq}}}' } },
    pipeline: {
      processors: [{ dedupe: { resource: 'seen', key: '{id}' } }, { http: { resource: 'api', url: 'https://api.example.com/items/{id}' } }],
    },
    output: { drop: {} },
    resources: { caches: { seen: { memory: { capacity: 100 } } }, http: { api: { hosts: ['api.example.com'] } } },
  };
  const saved = await api('GET', `/api/v1/streams/${streamId}`);
  assert.equal(saved.status, 200);
  assert.deepEqual(saved.body.config, expected, 'the saved config');

  // Reopened: the selects and the Resources editor show what was saved.
  await page.goto(`${base}/streams/${streamId}/edit`);
  await page.getByRole('heading', { name: 'Edit resourced' }).waitFor();
  await expectText(resourcesButton(), /^Resources \(2\)$/, 'two resources on the button');
  await openProcessor(1);
  assert.equal(await select(dedupe).inputValue(), 'seen');
  await openProcessor(2);
  assert.equal(await select(http).inputValue(), 'api');
  await resourcesButton().click();
  assert.equal(await card('caches.seen').getByLabel('seen kind').inputValue(), 'memory');
  assert.equal(await box(`${RESOURCES}.caches.seen.memory.capacity`).inputValue(), '100');
  assert.equal(await box(`${RESOURCES}.http.api.hosts.0`).inputValue(), 'api.example.com');
  await expectText(card('caches.seen').locator('.used-by'), /used by processor 1$/, 'the dedupe using the cache');
  await expectText(card('http.api').locator('.used-by'), /used by processor 2$/, 'the http processor using the grant');
  assert.equal(await page.getByRole('region', { name: 'SQL connections' }).locator('[data-resource]').count(), 0);
});

test('a problem in a resource shows at its field, and one in a processor at its resource select; nothing is saved', async () => {
  const before = (await api('GET', `/api/v1/streams/${streamId}`)).body.version;
  const host = `${RESOURCES}.http.api.hosts.0`;
  await box(host).fill('https://api.example.com/');
  await page.getByRole('button', { name: 'Save and run' }).click();
  const problems = page.getByRole('alert', { name: 'Problems' });
  await expectText(problems, new RegExp(escapeRe('config.resources.http.api.hosts[0]')), 'the problem listed with its path');
  await expectText(field(host).locator('.field-error'), /is a URL: write the host/, 'the error at the host');
  assert.match((await field(host).getAttribute('class')) ?? '', /\bhas-error\b/);
  assert.equal(await card('caches.seen').locator('.field-error').count(), 0, 'nothing on the cache');
  await expectText(resourcesButton(), /\(1 problem\)/, 'the count on the Resources button');
  await field(host).evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shot('builder-resource-error');
  assert.equal((await api('GET', `/api/v1/streams/${streamId}`)).body.version, before, 'nothing saved');
  await box(host).fill('api.example.com');

  // A cache named by hand that is not declared: flagged as typed, refused by the server at the select.
  await openProcessor(1);
  const dedupe = 'config.pipeline.processors.0.dedupe.resource';
  await select(dedupe).selectOption({ label: 'another name…' });
  await field(dedupe).getByLabel('resource name').fill('nope');
  await expectText(field(dedupe), /No cache named "nope" is declared/, 'the name typed flagged');
  await page.getByRole('button', { name: 'Validate' }).click();
  await expectText(field(dedupe).locator('.field-error'), /no cache resource "nope"/, "the server's error at the select");
  await expectText(page.locator('[data-node="Processor 1"] .err-count'), /^1$/, 'the count on the processor');
  await select(dedupe).selectOption('seen');
  await page.getByRole('button', { name: 'Validate' }).click();
  await expectText(page.locator('.banner.success'), /The config is valid/, 'valid again');
  assert.equal((await api('GET', `/api/v1/streams/${streamId}`)).body.version, before, 'still nothing saved');
});

test('a resource renamed: the processors naming it follow; one added and removed', async () => {
  await resourcesButton().click();
  await card('caches.seen').getByRole('button', { name: 'Rename seen' }).click();
  await card('caches.seen').getByLabel('New name for seen').fill('api');
  await expectText(card('caches.seen'), /"api" is already declared/, 'a name taken');
  await card('caches.seen').getByLabel('New name for seen').fill('recent');
  await card('caches.seen').locator('.rename').getByRole('button', { name: 'Rename', exact: true }).click();
  await card('caches.recent').waitFor();
  await waitFor('the cache and the dedupe renamed in the YAML', async () => {
    const c = YAML.parse(await yaml().inputValue());
    return c.resources.caches.recent?.memory.capacity === 100 && !c.resources.caches.seen && c.pipeline.processors[0].dedupe.resource === 'recent';
  });
  await openProcessor(1);
  assert.equal(await select('config.pipeline.processors.0.dedupe.resource').inputValue(), 'recent');

  // A local rate limit, added then removed: `rate_limits` leaves the config with it.
  await resourcesButton().click();
  await addResource('rate_limits', 'calls', 'local');
  await box(`${RESOURCES}.rate_limits.calls.local.count`).fill('10');
  await waitFor('the rate limit in the YAML', async () => YAML.parse(await yaml().inputValue()).resources.rate_limits?.calls?.local?.count === 10);
  await card('rate_limits.calls').getByRole('button', { name: 'Remove calls' }).click();
  await waitFor('the rate limit gone from the YAML', async () => !/rate_limits/.test(await yaml().inputValue()));

  await page.getByRole('button', { name: 'Save and run' }).click();
  await page.waitForURL(new RegExp(`/streams/${escapeRe(streamId)}$`));
  const saved = (await api('GET', `/api/v1/streams/${streamId}`)).body.config;
  assert.deepEqual(saved.resources, { caches: { recent: { memory: { capacity: 100 } } }, http: expected.resources.http });
  assert.equal(saved.pipeline.processors[0].dedupe.resource, 'recent');
});

test('the test panel sends Allow side effects: without it a cache write fails the message, with it it goes through', async () => {
  await newStream('cache-writer');
  // Written in the YAML: the Resources editor and the processor's select follow.
  await yaml().fill(
    YAML.stringify({
      pipeline: { processors: [{ cache: { resource: 'store', operator: 'set', key: '{id}' } }] },
      resources: { caches: { store: { memory: {} } } },
    }),
  );
  await resourcesButton().click();
  assert.equal(await card('caches.store').getByLabel('store kind').inputValue(), 'memory');
  await box(`${RESOURCES}.caches.store.memory.ttl`).fill('1m');
  await waitFor('the ttl in the YAML', async () => YAML.parse(await yaml().inputValue()).resources.caches.store.memory.ttl === '1m');
  await openProcessor(1);
  assert.equal(await select('config.pipeline.processors.0.cache.resource').inputValue(), 'store');

  const panel = page.getByRole('region', { name: 'Test panel' });
  const allow = panel.getByLabel('Allow side effects');
  assert.equal(await allow.isChecked(), false, 'off to start with');
  await expectText(panel, /cache write is refused/, 'what it means');
  await panel.getByLabel('Sample messages, one per line').fill('{"id": 1}');
  const run = async () => {
    const request = page.waitForRequest((r) => r.url().endsWith('/api/v1/streams/test') && r.method() === 'POST');
    await panel.getByRole('button', { name: 'Run on 1 message' }).click();
    return (await request).postDataJSON();
  };
  const table = panel.getByRole('table', { name: 'Test results' });
  assert.equal((await run()).allow_side_effects, false, 'sent off');
  await expectText(table.locator('[data-message="1"] [data-step="1"] .msg.failed .msg-error'), /does not allow side effects/, 'the cache write refused');

  await allow.check();
  assert.equal((await run()).allow_side_effects, true, 'sent on');
  await waitFor('the message through the cache', async () => (await table.locator('[data-message="1"] [data-step="1"] .msg.failed').count()) === 0 && (await table.locator('[data-message="1"] [data-step="1"] .msg').count()) === 1);
  await expectText(table.locator('[data-message="1"] [data-step="1"] .msg'), /"id": ?1/, 'the payload as it was');
  await panel.evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await shot('builder-test-side-effects');
});

test("the processors page shows each uploaded processor's contract and the capabilities it asks for", async () => {
  for (const [file, name] of [
    ['fixture_seen.wasm', 'seen-marker'],
    ['fixture_v1.wasm', 'upper'],
  ]) {
    const at = path.join(FIXTURES, file);
    assert.ok(fs.existsSync(at), `the fixture component is missing at ${at} (set FIXTURES_DIR)`);
    await page.getByRole('navigation').getByRole('link', { name: 'Processors', exact: true }).click();
    await page.getByLabel('Choose a .wasm file').setInputFiles(at);
    await page.locator('#proc-name').fill(name);
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.getByRole('region', { name: `Processor ${name}` }).waitFor();
  }
  const listed = (await api('GET', '/api/v1/processors')).body;
  const of = (name) => listed.find((p) => p.name === name);
  assert.deepEqual([of('seen-marker').contract, of('seen-marker').capabilities], ['0.2.0', ['cache']]);
  assert.deepEqual([of('upper').contract, of('upper').capabilities], ['0.1.0', []]);

  const table = page.getByRole('table', { name: 'Uploaded processors' });
  const row = (name) => table.locator('tr', { has: page.getByRole('link', { name, exact: true }) });
  await expectText(row('seen-marker').locator('.proc-meta'), /contract 0\.2\.0/, 'the contract of seen-marker');
  await expectText(row('seen-marker').locator('.asks'), /^asks for:\s*cache$/, 'what seen-marker asks for');
  await expectText(row('upper').locator('.proc-meta'), /contract 0\.1\.0/, 'the contract of upper');
  assert.equal(await row('upper').locator('.asks').count(), 0, 'upper asks for nothing');

  await row('seen-marker').getByRole('link', { name: 'seen-marker' }).click();
  const detail = page.getByRole('region', { name: 'Processor seen-marker' });
  await expectText(detail.locator('[data-contract]'), /airtruct:processor@0\.2\.0/, 'the contract in the detail');
  await expectText(detail.locator('[data-capabilities]'), /asks for:\s*cache[^]*grants/, 'the capabilities in the detail');
  await shot('processors-capabilities');
});

test("an uploaded processor's grants chosen among the declared resources; refused without one of what it asks for", async () => {
  await newStream('seen-marked');
  await page.locator('.pick[data-kind=generate]').click();
  await page.getByRole('button', { name: /^Output:/ }).click();
  await page.locator('.pick[data-kind=drop]').click();
  await page.getByRole('button', { name: '+ Add processor' }).click();
  const pick = page.getByRole('list', { name: 'Processor kinds' }).locator('.pick[data-kind="u:seen-marker"]');
  await expectText(pick.locator('.asks'), /asks for:\s*cache/, 'the capabilities in the picker');
  await pick.click();
  const grants = 'config.pipeline.processors.0.wasm.grants';
  await expectText(field(grants), /declares no resources yet/, 'no resource to grant yet');
  await box('config.pipeline.processors.0.wasm.config.cache').fill('seen');
  await resourcesButton().click();
  await addResource('caches', 'seen', 'memory');
  await addResource('http', 'api');
  await field(`${RESOURCES}.http.api.hosts`).getByRole('button', { name: 'Add item' }).click();
  await box(`${RESOURCES}.http.api.hosts.0`).fill('api.example.com');
  await openProcessor(1);
  await expectText(field(grants), /It asks for cache: grant it a cache \(resources\.caches\)/, 'what is missing');
  // Not granted: refused at the grants, in place.
  await page.getByRole('button', { name: 'Validate' }).click();
  await expectText(field(grants).locator('.field-error'), /asks for cache \(resources\.caches\) but the stream grants it none/, "the server's error at the grants");
  await expectText(page.locator('[data-node="Processor 1"] .err-count'), /^1$/, 'the count on the processor');
  assert.equal(await page.locator('.problems li').count(), 1, 'the one problem');
  await field(grants).evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shot('builder-grants-error');
  // Every declared resource is offered; the cache granted, it is valid.
  const boxes = field(grants).getByRole('checkbox');
  assert.equal(await boxes.count(), 2, 'the cache and the HTTP grant');
  await field(grants).getByRole('checkbox', { name: /seen/ }).check();
  await expectText(field(grants), /each is granted/, 'nothing missing');
  await waitFor('the grant in the YAML', async () => JSON.stringify(YAML.parse(await yaml().inputValue()).pipeline.processors[0].wasm.grants) === '["seen"]');
  await page.getByRole('button', { name: 'Validate' }).click();
  await expectText(page.locator('.banner.success'), /The config is valid/, 'valid once granted');
  // Run in the test panel, side effects allowed: the component writes to the cache.
  const panel = page.getByRole('region', { name: 'Test panel' });
  await panel.getByLabel('Sample messages, one per line').fill('a\na');
  await panel.getByLabel('Allow side effects').check();
  await panel.getByRole('button', { name: 'Run on 2 messages' }).click();
  const table = panel.getByRole('table', { name: 'Test results' });
  await expectText(table.locator('[data-message="1"] [data-step="1"] .meta'), /seen=false/, 'the first not seen');
  await expectText(table.locator('[data-message="2"] [data-step="1"] .meta'), /seen=true/, 'the second seen');
});
