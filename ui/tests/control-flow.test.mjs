// Browser tests of the builder's nested component editors: options that hold components of their own (marked
// `x-airtruct-component` in the catalogue) edited as components, each with its kind picker and its generated form.
// A `broker` input of two `generate` inputs and a `switch` output of two cases (a check and a `file` output, then a
// `drop` output) are built in the forms, saved, read back through the API, reopened, and a problem in a case's
// output is shown at its nested field; a window buffer's optional `late_output` stays closed until added. Run by
// `npm --prefix ui test`; the server and the browser are started by ./helpers.mjs.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
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
