// Browser tests of the builder's nested component editors: options that hold components of their own (marked
// `x-airtruct-component` in the catalogue) edited as components, each with its kind picker and its generated form.
// A `broker` input of two `generate` inputs and a `switch` output of two cases (a check and a `file` output, then a
// `drop` output) are built in the forms, saved, read back through the API, reopened, and a problem in a case's
// output is shown at its nested field; a window buffer's optional `late_output` stays closed until added. Then
// processors in control flow: a `switch` processor's cases, a `try` and a `catch` built as nested lists of processor
// editors, saved, reopened, run in the test panel (the steps inside listed under their control step), a bad VRL
// shown at its nested field, and a `try` in a `switch` case in a `catch`; a running stream's Live tab, its steps
// numbered as the server numbers them, a switch's nested step included. Run by `npm --prefix ui test`; the server
// and the browser are started by ./helpers.mjs.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import { PASSWORD, consoleUnderTest, escapeRe, expectText, waitFor } from './helpers.mjs';

const harness = consoleUnderTest();
const { test, shot, api } = harness;
let base;
let page;

before(async () => {
  await harness.start();
  ({ base, page } = harness);
});

after(() => harness.stop());

/** The broker input's list and the switch output's cases in the form: `data-field` paths, the config's joined with dots. */
const INPUTS = 'config.input.broker.inputs';
const CASES = 'config.output.switch.cases';
const CHECK = 'mod(to_int!(.seq), 2) == 0';
const PAYLOAD = '{"seq":{{seq}},"from":"second"}';

/** The form element of the field at `path` (a `data-field`). */
const field = (path) => page.locator(`[data-field="${path}"]`);
/** The text box of the field at `path`. */
const box = (path) => field(path).locator('input, textarea').first();

/** Every `x-airtruct-component` mark in a schema, as `option: role` (`outputs: output`), sorted. */
function marks(schema) {
  const out = [];
  const walk = (v, option) => {
    if (!v || typeof v !== 'object') return;
    if (typeof v['x-airtruct-component'] === 'string') out.push(`${option}: ${v['x-airtruct-component']}`);
    for (const [k, x] of Object.entries(v)) {
      if (k === 'properties' && x && typeof x === 'object') for (const [name, p] of Object.entries(x)) walk(p, name);
      else walk(x, option);
    }
  };
  walk(schema, undefined);
  return out.sort();
}

let filesDir;
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

test('the catalogue marks the options that hold components with their role', async () => {
  const catalogue = await api('GET', '/api/v1/components');
  assert.equal(catalogue.status, 200);
  const schema = (role, kind) => catalogue.body[role].find((k) => k.kind === kind)?.config_schema;
  assert.deepEqual(marks(schema('outputs', 'switch')), ['output: output'], "a switch case's output");
  assert.deepEqual(marks(schema('outputs', 'broker')), ['outputs: output'], "a broker's outputs");
  assert.deepEqual(marks(schema('inputs', 'broker')), ['inputs: input'], "a broker's inputs");
  assert.deepEqual(marks(schema('buffers', 'system_window')), ['late_output: output'], "a window's late output");
});

test('a broker input of two generate inputs and a switch output of two cases, built in the nested forms and saved', async () => {
  // A folder streams may write to: the one uploaded files are kept in.
  assert.equal((await api('PUT', '/api/v1/files/control-flow.txt', 'x')).status, 201);
  const listed = (await api('GET', '/api/v1/files')).body.find((f) => f.name === 'control-flow.txt');
  filesDir = listed.path.slice(0, listed.path.lastIndexOf('/'));
  const routed = `${filesDir}/routed.jsonl`;

  await page.getByRole('navigation').getByRole('link', { name: 'Streams', exact: true }).click();
  await page.getByRole('button', { name: 'New stream' }).click();
  await page.getByRole('heading', { name: 'New stream' }).waitFor();
  await page.locator('#stream-name').fill('routed');
  const yaml = page.getByLabel('YAML config');

  // Input: a broker; its inputs are added in its own form, each picked from the catalogue's inputs.
  await page.locator('.pick[data-kind=broker]').click();
  const inputs = field(INPUTS);
  await inputs.waitFor();
  assert.equal(await inputs.locator('.pick').count(), 0, 'no picker before Add input');
  for (let n = 1; n <= 3; n++) {
    await inputs.getByRole('button', { name: 'Add input', exact: true }).click();
    await inputs.getByRole('list', { name: `Choose input ${n}` }).locator('.pick[data-kind=generate]').click();
    await box(`${INPUTS}.${n - 1}.generate.count`).waitFor();
  }
  await box(`${INPUTS}.0.generate.count`).fill('3');
  await box(`${INPUTS}.0.generate.interval`).fill('20ms');
  await box(`${INPUTS}.1.generate.count`).fill('2');
  await box(`${INPUTS}.1.generate.interval`).fill('20ms');
  await box(`${INPUTS}.1.generate.payload`).fill(PAYLOAD);
  // The third is moved up, then taken out: the first two stay as they were.
  await inputs.getByRole('button', { name: 'Move input 3 up' }).click();
  await waitFor('the moved input in the form', async () => (await box(`${INPUTS}.2.generate.payload`).inputValue()) === PAYLOAD);
  await inputs.getByRole('button', { name: 'Move input 2 down' }).click();
  await waitFor('the input moved back', async () => (await box(`${INPUTS}.1.generate.payload`).inputValue()) === PAYLOAD);
  await inputs.getByRole('button', { name: 'Remove input 3' }).click();
  await waitFor('two inputs left', async () => (await field(`${INPUTS}.2`).count()) === 0);
  await waitFor('the broker in the YAML', async () => /input:\n\s+broker:\n\s+inputs:\n\s+- generate:\n\s+count: 3\n\s+interval: 20ms\n\s+- generate:\n\s+count: 2/.test(await yaml.inputValue()));
  await inputs.evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await shot('builder-broker-input');

  // Output: a switch; each case's output is picked in the case's own form.
  await page.getByRole('button', { name: /^Output:/ }).click();
  await page.locator('.pick[data-kind=switch]').click();
  const cases = field(CASES);
  const addCase = cases.locator(':scope > button', { hasText: /^Add / });
  await addCase.click();
  await box(`${CASES}.0.check`).fill(CHECK);
  const first = field(`${CASES}.0.output`);
  await first.locator('.pick[data-kind=file]').click();
  await box(`${CASES}.0.output.file.path`).fill(routed);
  await addCase.click();
  await field(`${CASES}.1.output`).locator('.pick[data-kind=drop]').click();
  await waitFor('the drop output of the second case', async () => (await field(`${CASES}.1.output`).getByLabel('output kind', { exact: true }).inputValue()) === 'drop');
  assert.equal(await first.getByLabel('output kind', { exact: true }).inputValue(), 'file');
  await waitFor('the switch in the YAML', async () => /output:\n\s+switch:\n\s+cases:\n\s+- output:\n\s+file:\n\s+path: \S+routed\.jsonl\n\s+check: /.test(await yaml.inputValue()));
  await cases.evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await shot('builder-switch-output');

  await page.getByRole('button', { name: 'Save and run' }).click();
  await page.waitForURL(/\/streams\/(?!new$)[^/]+$/);
  streamId = new URL(page.url()).pathname.split('/').pop();

  // Saved as built: the nested components in the shape the server reads.
  expected = {
    input: {
      broker: {
        inputs: [{ generate: { count: 3, interval: '20ms' } }, { generate: { count: 2, interval: '20ms', payload: PAYLOAD } }],
      },
    },
    output: {
      switch: {
        cases: [{ output: { file: { path: routed } }, check: CHECK }, { output: { drop: {} } }],
      },
    },
  };
  const saved = await api('GET', `/api/v1/streams/${streamId}`);
  assert.equal(saved.status, 200);
  assert.deepEqual(saved.body.config, expected, 'the saved config');
});

test('reopened in the builder, the nested forms show the saved components', async () => {
  await page.goto(`${base}/streams/${streamId}/edit`);
  await page.getByRole('heading', { name: 'Edit routed' }).waitFor();
  // The input first: the broker with its two generate inputs.
  await box(`${INPUTS}.1.generate.payload`).waitFor();
  assert.equal(await page.getByLabel('Input kind', { exact: true }).inputValue(), 'broker');
  for (const n of [1, 2]) assert.equal(await field(`${INPUTS}.${n - 1}`).getByLabel(`Input ${n} kind`).inputValue(), 'generate');
  assert.equal(await field(`${INPUTS}.2`).count(), 0, 'two inputs');
  assert.equal(await box(`${INPUTS}.0.generate.count`).inputValue(), '3');
  assert.equal(await box(`${INPUTS}.0.generate.interval`).inputValue(), '20ms');
  assert.equal(await box(`${INPUTS}.1.generate.count`).inputValue(), '2');
  assert.equal(await box(`${INPUTS}.1.generate.payload`).inputValue(), PAYLOAD);

  // The output: the switch's cases, each with its output's form.
  await page.getByRole('button', { name: /^Output:/ }).click();
  await box(`${CASES}.0.output.file.path`).waitFor();
  assert.equal(await page.getByLabel('Output kind', { exact: true }).inputValue(), 'switch');
  assert.equal(await box(`${CASES}.0.check`).inputValue(), CHECK);
  assert.equal(await field(`${CASES}.0.output`).getByLabel('output kind', { exact: true }).inputValue(), 'file');
  assert.equal(await box(`${CASES}.0.output.file.path`).inputValue(), expected.output.switch.cases[0].output.file.path);
  assert.equal(await field(`${CASES}.1.output`).getByLabel('output kind', { exact: true }).inputValue(), 'drop');
  assert.equal(await box(`${CASES}.1.check`).inputValue(), '', 'no check: every message');
  assert.equal(await field(`${CASES}.2`).count(), 0, 'two cases');
});

test("a problem in a case's output shows at that nested field, and nothing is saved", async () => {
  const before = (await api('GET', `/api/v1/streams/${streamId}`)).body.version;
  const path = `${CASES}.0.output.file.path`;
  await box(path).fill('/etc/airtruct-routed.jsonl');
  await page.getByRole('radio', { name: 'Active' }).click();
  await page.getByRole('button', { name: 'Save and run' }).click();
  const problems = page.getByRole('alert', { name: 'Problems' });
  await expectText(problems, new RegExp(escapeRe('config.output.switch.cases[0].output.file.path')), 'the problem listed with its path');
  // At the field of the file output's path, inside the first case.
  await expectText(field(path).locator('.field-error'), /outside the folders streams may use/, "the error at the case's output path");
  assert.match((await field(path).getAttribute('class')) ?? '', /\bhas-error\b/);
  assert.equal(await field(`${CASES}.1`).locator('.field-error').count(), 0, 'nothing on the other case');
  await expectText(page.locator('[data-node="Output"] .err-count'), /^1$/, 'the error count on the output node');
  await field(path).evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shot('builder-nested-error');
  assert.equal((await api('GET', `/api/v1/streams/${streamId}`)).body.version, before, 'nothing saved');

  // Fixed, it saves.
  await box(path).fill(expected.output.switch.cases[0].output.file.path);
  await waitFor('the field error cleared', async () => (await page.locator('.field-error').count()) === 0);
  await page.getByRole('button', { name: 'Save and run' }).click();
  await page.waitForURL(new RegExp(`/streams/${escapeRe(streamId)}$`));
  assert.deepEqual((await api('GET', `/api/v1/streams/${streamId}`)).body.config, expected, 'the config as it was');
});

test("a window buffer's optional late_output stays closed until added; Remove takes it out", async () => {
  await page.getByRole('navigation').getByRole('link', { name: 'Streams', exact: true }).click();
  await page.getByRole('button', { name: 'New stream' }).click();
  await page.getByRole('heading', { name: 'New stream' }).waitFor();
  await page.getByRole('button', { name: /^Stream settings/ }).click();
  await page.locator('#buffer-kind').selectOption('system_window');
  const late = field('config.buffer.system_window.late_output');
  const yaml = page.getByLabel('YAML config');
  const add = late.getByRole('button', { name: 'Add late_output' });
  await add.waitFor();
  await expectText(late, /Where late messages go/, 'the description of late_output');
  assert.equal(await late.locator('.pick').count(), 0, 'no picker while it is closed');
  assert.doesNotMatch(await yaml.inputValue(), /late_output/);

  // Added: the catalogue's outputs to pick from; the config has it once one is picked.
  await add.click();
  await late.getByRole('list', { name: 'Choose the late_output' }).locator('.pick[data-kind=drop]').click();
  await waitFor('late_output in the YAML', async () => /late_output:\n\s+drop: \{\}/.test(await yaml.inputValue()));
  assert.equal(await late.getByLabel('late_output kind', { exact: true }).inputValue(), 'drop');

  // Removed: out of the config, closed again.
  await late.getByRole('button', { name: 'Remove late_output' }).click();
  await waitFor('late_output gone from the YAML', async () => !/late_output/.test(await yaml.inputValue()));
  await add.waitFor();
});

// Processors in control flow: a `switch` processor's cases and the options of `try` and `catch` hold processors,
// edited as nested lists of processor editors.

const PROCESSORS = 'config.pipeline.processors';
const SWITCH_CASES = `${PROCESSORS}.0.switch.cases`;
const BIG = '.n > 3';
let branchedId;
let branched;

/** Adds a processor of `kind` to the nested list of processors at `list` (a `data-field`). */
async function addProcessor(list, kind) {
  const f = field(list);
  const n = await f.locator(':scope > .nested-component').count();
  await f.locator(':scope > button', { hasText: /^Add processor$/ }).click();
  await f.getByRole('list', { name: `Choose processor ${n + 1}` }).locator(`.pick[data-kind="${kind}"]`).click();
  await field(`${list}.${n}`).waitFor();
}

/** The pipeline's node for processor `n` (from 1), selected. */
const openProcessor = (n) => page.getByRole('button', { name: new RegExp(`^Processor ${n}:`) }).click();

test('the catalogue marks the processor lists of switch cases, try and catch', async () => {
  const catalogue = (await api('GET', '/api/v1/components')).body;
  const schema = (kind) => catalogue.processors.find((k) => k.kind === kind)?.config_schema;
  assert.deepEqual(marks(schema('switch')), ['processors: processor'], "a switch case's processors");
  for (const kind of ['try', 'catch']) assert.equal(schema(kind)['x-airtruct-component'], 'processor', `${kind}'s options`);
});

test('a switch, a try and a catch processor built in the nested forms, saved in exactly that shape', async () => {
  await page.getByRole('navigation').getByRole('link', { name: 'Streams', exact: true }).click();
  await page.getByRole('button', { name: 'New stream' }).click();
  await page.getByRole('heading', { name: 'New stream' }).waitFor();
  await page.locator('#stream-name').fill('branched');
  const yaml = page.getByLabel('YAML config');
  await page.locator('.pick[data-kind=generate]').click();
  await box('config.input.generate.count').fill('5');
  await box('config.input.generate.interval').fill('20ms');
  await box('config.input.generate.payload').fill('{"n":{{seq}}}');
  await page.getByRole('button', { name: /^Output:/ }).click();
  await page.locator('.pick[data-kind=drop]').click();

  // The pipeline's own picker: the kinds a nested list must offer too.
  await page.getByRole('button', { name: '+ Add processor' }).click();
  const offered = async (list) => list.locator('.pick').evaluateAll((els) => els.map((e) => e.dataset.kind));
  const topKinds = await offered(page.getByRole('list', { name: 'Processor kinds' }));
  assert.ok(topKinds.includes('switch') && topKinds.includes('mapping'), `the pipeline's kinds: ${topKinds}`);

  // A switch starts with one case, empty: valid as it is.
  await page.getByRole('list', { name: 'Processor kinds' }).locator('.pick[data-kind=switch]').click();
  await box(`${SWITCH_CASES}.0.check`).waitFor();
  await waitFor('the switch with one empty case in the YAML', async () => /processors:\n\s+- switch:\n\s+cases:\n\s+- \{\}\n/.test(await yaml.inputValue()));
  assert.equal(await field(`${SWITCH_CASES}.1`).count(), 0, 'one case');

  // Case 1: a check and a mapping, the mapping picked from the same kinds as the pipeline's.
  await box(`${SWITCH_CASES}.0.check`).fill(BIG);
  const list1 = `${SWITCH_CASES}.0.processors`;
  await field(list1).locator(':scope > button', { hasText: /^Add processor$/ }).click();
  assert.deepEqual(await offered(field(list1).getByRole('list', { name: 'Choose processor 1' })), topKinds, 'the nested picker offers what the pipeline offers');
  await field(list1).getByRole('list', { name: 'Choose processor 1' }).locator('.pick[data-kind=mapping]').click();
  await box(`${list1}.0.mapping`).fill('.big = true');
  // Case 2: no check, a mapping.
  await field(SWITCH_CASES).locator(':scope > button', { hasText: /^Add / }).click();
  await addProcessor(`${SWITCH_CASES}.1.processors`, 'mapping');
  await box(`${SWITCH_CASES}.1.processors.0.mapping`).fill('.big = false');

  // A try, then a catch: each starts as an empty list, and gets a mapping.
  for (const [n, kind, vrl] of [
    [2, 'try', '.tried = true'],
    [3, 'catch', '.caught = true'],
  ]) {
    await page.getByRole('button', { name: '+ Add processor' }).click();
    await page.getByRole('list', { name: 'Processor kinds' }).locator(`.pick[data-kind=${kind}]`).click();
    const list = `${PROCESSORS}.${n - 1}.${kind}`;
    await field(list).waitFor();
    await waitFor(`the empty ${kind} in the YAML`, async () => new RegExp(`\\n\\s+- ${kind}: \\[\\]\\n`).test(await yaml.inputValue()));
    await addProcessor(list, 'mapping');
    await box(`${list}.0.mapping`).fill(vrl);
  }
  await openProcessor(1);
  await field(SWITCH_CASES).evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await shot('builder-switch-processor');

  await page.getByRole('button', { name: 'Save and run' }).click();
  await page.waitForURL(/\/streams\/(?!new$)[^/]+$/);
  branchedId = new URL(page.url()).pathname.split('/').pop();
  branched = {
    input: { generate: { count: 5, interval: '20ms', payload: '{"n":{{seq}}}' } },
    pipeline: {
      processors: [
        { switch: { cases: [{ check: BIG, processors: [{ mapping: '.big = true' }] }, { processors: [{ mapping: '.big = false' }] }] } },
        { try: [{ mapping: '.tried = true' }] },
        { catch: [{ mapping: '.caught = true' }] },
      ],
    },
    output: { drop: {} },
  };
  const saved = await api('GET', `/api/v1/streams/${branchedId}`);
  assert.equal(saved.status, 200);
  assert.deepEqual(saved.body.config, branched, 'the saved config');

  // The stream's page lists the steps inside with their counters, indented under their control step: of the five
  // messages, n = 4 and 5 took the first case, 1 to 3 the second.
  const inside = page.getByRole('list', { name: 'Steps inside control flow' });
  const row = (component) => inside.locator(`li[data-component="${component}"]`);
  const received = (component) => row(component).locator('[data-counter=received]').getAttribute('data-value');
  await waitFor('the cases counted', async () => (await received('pipeline.processors[0].switch.cases[0].processors[0]')) === '2' && (await received('pipeline.processors[0].switch.cases[1].processors[0]')) === '3', 30000);
  await expectText(row('pipeline.processors[0].switch.cases[1].processors[0]'), /case 2 › processor 1 · mapping/, 'the second case’s mapping named by its place');
  assert.equal(await row('pipeline.processors[0]').getAttribute('data-depth'), '0');
  assert.equal(await row('pipeline.processors[1].try[0]').getAttribute('data-depth'), '1');
  const x = async (component) => (await row(component).locator('.flow-step').evaluate((el) => el.getBoundingClientRect().left + parseFloat(getComputedStyle(el).paddingLeft)));
  assert.ok((await x('pipeline.processors[0].switch.cases[0].processors[0]')) > (await x('pipeline.processors[0]')), 'a nested step indented under its switch');
  await inside.evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shot('stream-nested-counters');
});

test('reopened, the nested processor forms show the saved values', async () => {
  await page.goto(`${base}/streams/${branchedId}/edit`);
  await page.getByRole('heading', { name: 'Edit branched' }).waitFor();
  await openProcessor(1);
  await box(`${SWITCH_CASES}.1.processors.0.mapping`).waitFor();
  assert.equal(await page.getByLabel('Processor 1 kind', { exact: true }).first().inputValue(), 'switch');
  assert.equal(await box(`${SWITCH_CASES}.0.check`).inputValue(), BIG);
  assert.equal(await box(`${SWITCH_CASES}.1.check`).inputValue(), '', 'no check: every message');
  assert.equal(await field(`${SWITCH_CASES}.2`).count(), 0, 'two cases');
  for (const [c, vrl] of [
    [0, '.big = true'],
    [1, '.big = false'],
  ]) {
    const list = `${SWITCH_CASES}.${c}.processors`;
    assert.equal(await field(`${list}.0`).getByLabel('Processor 1 kind', { exact: true }).inputValue(), 'mapping');
    assert.equal(await box(`${list}.0.mapping`).inputValue(), vrl);
    assert.equal(await field(`${list}.1`).count(), 0, `one processor in case ${c + 1}`);
  }
  for (const [n, kind, vrl] of [
    [2, 'try', '.tried = true'],
    [3, 'catch', '.caught = true'],
  ]) {
    await openProcessor(n);
    const list = `${PROCESSORS}.${n - 1}.${kind}`;
    await box(`${list}.0.mapping`).waitFor();
    assert.equal(await field(`${list}.0`).getByLabel('Processor 1 kind', { exact: true }).inputValue(), 'mapping');
    assert.equal(await box(`${list}.0.mapping`).inputValue(), vrl);
    assert.equal(await field(`${list}.1`).count(), 0, `one processor in the ${kind}`);
  }
});

test('the test panel lists the steps inside switch, try and catch, indented under their control step', async () => {
  const samples = page.getByLabel('Sample messages, one per line');
  await samples.fill('{"n": 5}');
  await page.getByRole('button', { name: 'Run on 1 message' }).click();
  const table = page.getByRole('table', { name: 'Test results' });
  await table.waitFor();
  // One column per top-level processor; the steps inside in its cell, in the order they ran.
  await waitFor('three step columns', async () => (await table.getByRole('columnheader').count()) === 4);
  const cell = (step) => table.locator(`[data-message="1"] > [data-step="${step}"]`);
  const sub = (path) => table.locator(`[data-message="1"] li[data-path="${path}"]`);
  await expectText(cell(1).locator(':scope > .msg'), /"big": ?true/, 'after the switch');
  const case1 = sub('pipeline.processors[0].switch.cases[0].processors[0]');
  await expectText(case1, /case 1 › processor 1 · mapping/, "the first case's mapping named");
  await expectText(case1.locator('.msg'), /"big": ?true/, "the first case's mapping's output");
  await expectText(sub('pipeline.processors[0].switch.cases[1].processors[0]'), /case 2 › processor 1 · mapping[^]*no message here/, 'nothing in the second case');
  assert.equal(await cell(1).locator('li[data-path]').count(), 2, 'two steps inside the switch');
  await expectText(sub('pipeline.processors[1].try[0]').locator('.msg'), /"tried": ?true/, 'the mapping inside the try');
  await expectText(sub('pipeline.processors[2].catch[0]'), /no message here/, 'nothing failed: nothing for the catch');
  assert.deepEqual(
    await table.locator('[data-message="1"] [data-step]').evaluateAll((els) => els.map((e) => e.dataset.step)),
    ['1', '2', '3', '4', '5', '6', '7'],
    'every step, control steps first',
  );
  // Indented: the steps inside start to the right of their control step's output.
  const left = async (l) => (await l.boundingBox()).x;
  assert.ok((await left(case1.locator('.msg'))) > (await left(cell(1).locator(':scope > .msg'))), 'indented under the switch');
  await table.evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shot('builder-test-panel-nested');
});

test('a test case saved from a run with control flow expects what leaves the last processor, a caught failure recovered', async () => {
  // The second sample fails at the switch's check (a string compared with a number); the catch recovers it.
  const samples = page.getByLabel('Sample messages, one per line');
  await samples.fill('{"n": 5}\n{"n": "x"}');
  await page.getByRole('button', { name: 'Run on 2 messages' }).click();
  const table = page.getByRole('table', { name: 'Test results' });
  await expectText(table.locator('[data-message="2"] > [data-step="1"] > .msg.failed .msg-error'), /cases\[0\]\.check/, 'the failed check');
  await expectText(table.locator('[data-message="2"] > [data-step="6"] > .msg'), /"caught": ?true/, 'recovered by the catch');
  const panel = page.getByRole('region', { name: 'Test panel' });
  await panel.getByLabel('Test case name').fill('routed and caught');
  await panel.getByRole('button', { name: 'Save as test case' }).click();
  const yaml = page.getByLabel('YAML config');
  await waitFor('the case in the YAML', async () => /tests:[^]*routed and caught/.test(await yaml.inputValue()));
  const config = YAML.parse(await yaml.inputValue());
  assert.deepEqual(config.tests[0].expect, [{ payload: { big: true, n: 5, tried: true } }, { payload: { caught: true, n: 'x' } }], 'what leaves the catch, no failure');
  await panel.getByRole('button', { name: "Run the stream's 1 test case" }).click();
  await expectText(panel.getByLabel('Test cases'), /1 passed, 0 failed/, 'the case passing');
});

test('a bad VRL in a nested mapping shows its server error at that nested field, and nothing is saved', async () => {
  const before = (await api('GET', `/api/v1/streams/${branchedId}`)).body.version;
  await openProcessor(1);
  const path = `${SWITCH_CASES}.1.processors.0.mapping`;
  await box(path).fill('.big = (');
  await page.getByRole('button', { name: 'Save and run' }).click();
  const problems = page.getByRole('alert', { name: 'Problems' });
  await expectText(problems, new RegExp(escapeRe('config.pipeline.processors[0].switch.cases[1].processors[0].mapping')), 'the problem listed with its path');
  await expectText(field(path).locator('.field-error'), /syntax error/, "at the second case's mapping");
  assert.match((await field(path).getAttribute('class')) ?? '', /\bhas-error\b/);
  assert.equal(await field(`${SWITCH_CASES}.0`).locator('.field-error').count(), 0, 'nothing on the first case');
  await expectText(page.locator('[data-node="Processor 1"] .err-count'), /^1$/, 'the error count on the switch node');
  await field(path).evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shot('builder-nested-processor-error');
  assert.equal((await api('GET', `/api/v1/streams/${branchedId}`)).body.version, before, 'nothing saved');
  await box(path).fill('.big = false');
  await waitFor('the field error cleared', async () => (await page.locator('.field-error').count()) === 0);
});

test('nested as deep as the config: a try in a switch case in a catch; processors moved and removed', async () => {
  await page.getByRole('navigation').getByRole('link', { name: 'Streams', exact: true }).click();
  await page.getByRole('button', { name: 'New stream' }).click();
  await page.getByRole('heading', { name: 'New stream' }).waitFor();
  await page.getByRole('button', { name: '+ Add processor' }).click();
  await page.getByRole('list', { name: 'Processor kinds' }).locator('.pick[data-kind=catch]').click();
  const catchList = `${PROCESSORS}.0.catch`;
  await addProcessor(catchList, 'switch');
  const caseList = `${catchList}.0.switch.cases.0.processors`;
  await addProcessor(caseList, 'try');
  const tryList = `${caseList}.0.try`;
  for (const vrl of ['.a = 1', '.b = 2', '.c = (']) {
    await addProcessor(tryList, 'mapping');
    const n = (await field(tryList).locator(':scope > .nested-component').count()) - 1;
    await box(`${tryList}.${n}.mapping`).fill(vrl);
  }
  // Moved: the third up, then the first taken out.
  await field(tryList).getByRole('button', { name: 'Move processor 3 up' }).click();
  await waitFor('the moved mapping', async () => (await box(`${tryList}.1.mapping`).inputValue()) === '.c = (');
  await field(tryList).getByRole('button', { name: 'Remove processor 1' }).click();
  await waitFor('two mappings left', async () => (await field(`${tryList}.2`).count()) === 0);
  const yaml = page.getByLabel('YAML config');
  await waitFor('the nesting in the YAML', async () =>
    /processors:\n\s+- catch:\n\s+- switch:\n\s+cases:\n\s+- processors:\n\s+- try:\n\s+- mapping: \.c = \(\n\s+- mapping: \.b = 2\n/.test(await yaml.inputValue()),
  );
  // Validated: the bad VRL's error at its field, four levels down.
  await page.getByRole('button', { name: 'Validate' }).click();
  await page.getByRole('alert', { name: 'Problems' }).waitFor();
  await openProcessor(1);
  const path = `${tryList}.0.mapping`;
  await expectText(field(path).locator('.field-error'), /syntax error/, 'the error at the innermost mapping');
  assert.equal(await field(`${tryList}.1`).locator('.field-error').count(), 0, 'nothing on the other mapping');
  await expectText(page.locator('[data-node="Processor 1"] .err-count'), /^1$/, 'the error count on the catch node');
  await field(path).evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shot('builder-nested-deep');
});

test("the Live tab's steps are numbered as the server numbers them, the steps inside a switch included", async () => {
  const created = await api('POST', '/api/v1/streams', {
    name: 'tapped-switch',
    status: 'active',
    config: {
      input: { generate: { interval: '20ms', payload: '{"n":{{seq}}}' } },
      pipeline: { processors: [{ switch: { cases: [{ check: '.n > 0', processors: [{ mapping: '.big = true' }] }] } }, { mapping: '.after = 1' }] },
      output: { drop: {} },
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  try {
    await page.goto(`${base}/streams/${created.body.id}`);
    await page.getByRole('tab', { name: 'Live' }).click();
    const live = page.getByRole('region', { name: 'Live' });
    await expectText(live.getByRole('status'), /tapping/, 'the tap open');
    const menu = live.getByLabel('Step');
    assert.deepEqual(
      await menu.locator('option').evaluateAll((els) => els.map((e) => [e.value, e.textContent])),
      [
        ['', 'every step'],
        ['0', '0 · input (generate)'],
        ['1', '1 · pipeline.processors[0] (switch)'],
        ['2', '2 · pipeline.processors[0].switch.cases[0].processors[0] (mapping)'],
        ['3', '3 · pipeline.processors[1] (mapping)'],
        ['4', '4 · output (drop)'],
      ],
      'the steps in the menu, the one inside the switch after it',
    );
    const events = live.getByRole('list', { name: 'Tapped messages' });
    // The nested mapping alone: its messages, under its own label, carry what it set.
    const nested = 'pipeline.processors[0].switch.cases[0].processors[0] (mapping)';
    await menu.selectOption({ label: `2 · ${nested}` });
    await live.getByRole('button', { name: 'Clear' }).click();
    await waitFor('messages of the nested mapping', async () => (await events.locator('li').count()) >= 3);
    assert.equal(await events.locator('li:not([data-step="2"])').count(), 0, 'only step 2');
    await expectText(events.locator('li[data-step="2"]').first(), new RegExp(`${escapeRe(nested)}[^]*"big":true`), 'the nested mapping named, its output');
    const labels = await events.locator('li .small').allInnerTexts();
    assert.ok(labels.every((t) => t.includes(nested)), `every message under the nested step's label: ${labels.join(' | ')}`);
    await shot('stream-live-nested');
    // The mapping after the switch: number 3, not 2.
    await menu.selectOption({ label: '3 · pipeline.processors[1] (mapping)' });
    await live.getByRole('button', { name: 'Clear' }).click();
    await waitFor('messages of the mapping after the switch', async () => (await events.locator('li').count()) >= 3);
    assert.equal(await events.locator('li:not([data-step="3"])').count(), 0, 'only step 3');
    const payloads = await events.locator('li pre').allInnerTexts();
    assert.ok(payloads.every((t) => /"after":1/.test(t) && /"big":true/.test(t)), `after the switch and the mapping: ${payloads.join(' | ')}`);
    await expectText(events.locator('li[data-step="3"]').first(), /pipeline\.processors\[1\] \(mapping\)/, 'the mapping after the switch named');
  } finally {
    assert.equal((await api('DELETE', `/api/v1/streams/${created.body.id}`)).status, 204);
  }
});
