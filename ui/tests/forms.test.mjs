// Browser tests of the builder's generated forms as a new user meets them on a Kafka input: the fields in the order
// the schema lists them, an optional object (`sasl`) closed until added, a map (`options`) edited as keys and values,
// and the sidebar of a page longer than the window. Run by `npm --prefix ui test` after console.test.mjs; the server
// and the browser are started by ./helpers.mjs.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { PASSWORD, consoleUnderTest, expectText, waitFor } from './helpers.mjs';

const harness = consoleUnderTest();
const { test, shot, api } = harness;
let base;
let page;

before(async () => {
  await harness.start();
  ({ base, page } = harness);
});

after(() => harness.stop());

/** The kafka input's options in the form: `data-field` of its fields, as the config path joined with dots. */
const KAFKA = 'config.input.kafka';

/** The names of the fields right under `prefix` (a `data-field` path), in the order the page shows them. */
function fieldsUnder(prefix) {
  return page.evaluate(
    (prefix) =>
      [...document.querySelectorAll('[data-field]')]
        .map((e) => e.getAttribute('data-field'))
        .filter((f) => f.startsWith(`${prefix}.`) && !f.slice(prefix.length + 1).includes('.'))
        .map((f) => f.slice(prefix.length + 1)),
    prefix,
  );
}

/** A new stream in the builder with a kafka input picked. */
async function newKafkaStream() {
  await page.getByRole('navigation').getByRole('link', { name: 'Streams', exact: true }).click();
  await page.getByRole('button', { name: 'New stream' }).click();
  await page.getByRole('heading', { name: 'New stream' }).waitFor();
  await page.locator('.pick[data-kind=kafka]').click();
  await page.locator(`[data-field="${KAFKA}.brokers"]`).waitFor();
}

/** The field labels and group legends marked required (`*`) in the component's form, sorted. */
async function markedRequired() {
  const form = page.getByRole('region', { name: 'Component' });
  return (await form.locator('.field-label:has(.req), legend:has(.req)').allInnerTexts()).map((t) => t.replace(/\s*\*\s*$/, '')).sort();
}

test('sign in', async () => {
  await page.goto(`${base}/streams`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Streams' }).waitFor();
});

test('the form shows the fields in the order that explains them, as the catalogue lists them', async () => {
  const catalogue = await api('GET', '/api/v1/components');
  assert.equal(catalogue.status, 200);
  const schema = catalogue.body.inputs.find((k) => k.kind === 'kafka').config_schema;
  const declared = Object.keys(schema.properties);
  const saslDeclared = Object.keys(schema.$defs.KafkaSasl.properties);
  // The server lists options as their types declare them, not alphabetically.
  assert.deepEqual(declared, ['brokers', 'topics', 'consumer_group', 'start_from', 'tls', 'sasl', 'options']);
  assert.deepEqual(saslDeclared, ['mechanism', 'username', 'password']);

  await newKafkaStream();
  assert.deepEqual(await fieldsUnder(KAFKA), declared, "the catalogue's order");
  await page.locator(`[data-field="${KAFKA}.sasl"]`).getByRole('button', { name: 'Add sasl' }).click();
  await page.locator(`[data-field="${KAFKA}.sasl.username"]`).waitFor();
  assert.deepEqual(await fieldsUnder(`${KAFKA}.sasl`), saslDeclared, "the nested object's fields in its schema's order");
});

test('an optional object (kafka sasl) stays closed, without required marks, until added; Remove takes it out', async () => {
  await newKafkaStream();
  const form = page.getByRole('region', { name: 'Component' });
  const yaml = page.getByLabel('YAML config');
  const sasl = form.locator(`[data-field="${KAFKA}.sasl"]`);
  const saslFields = form.locator(`[data-field^="${KAFKA}.sasl."]`);
  const add = sasl.getByRole('button', { name: 'Add sasl' });
  const remove = sasl.getByRole('button', { name: 'Remove sasl' });

  // Closed: its description and Add, none of its fields, only what kafka itself requires marked.
  await add.waitFor();
  await expectText(sasl, /SASL authentication/, 'the description of sasl');
  assert.equal(await saslFields.count(), 0, 'no field of sasl while it is closed');
  assert.equal(await remove.count(), 0, 'nothing to remove while it is closed');
  assert.deepEqual(await markedRequired(), ['brokers', 'consumer_group', 'topics'], 'only what kafka requires is marked');
  assert.doesNotMatch(await yaml.inputValue(), /sasl/);
  await sasl.evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shot('builder-optional-closed');

  // Added: its fields, the ones it requires marked, and `sasl:` in the YAML.
  await add.click();
  await waitFor('sasl in the YAML', async () => /\n\s+sasl:\n/.test(await yaml.inputValue()));
  assert.deepEqual(await markedRequired(), ['brokers', 'consumer_group', 'mechanism', 'password', 'topics', 'username'], 'the fields sasl requires marked');
  assert.equal(await add.count(), 0, 'no Add once added');
  await sasl.getByLabel('mechanism').fill('SCRAM-SHA-256');
  await waitFor('the mechanism in the YAML', async () => /sasl:\n\s+mechanism: SCRAM-SHA-256/.test(await yaml.inputValue()));
  await sasl.evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shot('builder-optional-open');

  // Removed: out of the config, closed again, its marks gone.
  await remove.click();
  await waitFor('sasl gone from the YAML', async () => !/sasl/.test(await yaml.inputValue()));
  await add.waitFor();
  assert.equal(await saslFields.count(), 0, 'no field of sasl once removed');
  assert.deepEqual(await markedRequired(), ['brokers', 'consumer_group', 'topics'], 'the marks of sasl gone with it');

  // A config that has it (loaded, or written in the YAML) shows it open.
  const withSasl = (await yaml.inputValue()).replace('topics: []', 'topics: []\n    sasl:\n      mechanism: PLAIN\n      username: reader\n      password: ${secret:kafka_password}');
  await yaml.fill(withSasl);
  await waitFor('the sasl of the YAML in the form', async () => (await sasl.getByLabel('username').count()) > 0 && (await sasl.getByLabel('username').inputValue()) === 'reader');
  await remove.waitFor();
});

test('a map (kafka options) is edited as keys and values; an empty key is not saved, a key given twice is flagged and not written', async () => {
  const options = page.locator(`[data-field="${KAFKA}.options"]`);
  const yaml = page.getByLabel('YAML config');
  const entry = (what, n) => options.getByLabel(`${what} ${n}`, { exact: true });
  const addEntry = options.getByRole('button', { name: 'Add entry' });
  assert.equal(await options.locator('textarea').count(), 0, 'no YAML text area for the options');

  // A row just added, key and value empty, is not part of the config.
  await addEntry.click();
  await entry('Key', 1).waitFor();
  assert.doesNotMatch(await yaml.inputValue(), /options/, 'an empty row not written');
  assert.equal(await options.locator('.field-error').count(), 0, 'an empty row not flagged');

  await entry('Key', 1).fill('fetch.max.bytes');
  await entry('Value', 1).fill('1048576');
  await addEntry.click();
  await entry('Key', 2).fill('client.id');
  await entry('Value', 2).fill('airtruct-console');
  // The values are strings, as the schema says (`additionalProperties: {type: string}`).
  const both = /options:\n\s+fetch\.max\.bytes: "1048576"\n\s+client\.id: airtruct-console(\n|$)/;
  await waitFor('both options in the YAML', async () => both.test(await yaml.inputValue()));

  // A key given twice, or none: the row says so and the config keeps its last good entries.
  await entry('Key', 2).fill('fetch.max.bytes');
  await expectText(options.locator('[data-entry="2"] .field-error'), /The key "fetch\.max\.bytes" is already used above/, 'the repeated key flagged');
  assert.equal(await options.locator('[data-entry="1"] .field-error').count(), 0, 'the first use of the key not flagged');
  assert.match(await yaml.inputValue(), both, 'the config unchanged while a key repeats');
  await options.evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shot('builder-map');
  await entry('Key', 2).fill('');
  await expectText(options.locator('[data-entry="2"] .field-error'), /needs a key/, 'the missing key flagged');
  assert.match(await yaml.inputValue(), both, 'the config unchanged while a key is missing');
  await entry('Key', 2).fill('client.id');
  await waitFor('the key errors gone', async () => (await options.locator('.field-error').count()) === 0);

  // An entry removed leaves the YAML.
  await options.getByRole('button', { name: 'Remove entry 1' }).click();
  await waitFor('only client.id left', async () => /options:\n\s+client\.id: airtruct-console(\n|$)/.test(await yaml.inputValue()) && !/fetch\.max\.bytes/.test(await yaml.inputValue()));
  // And the YAML's entries show as rows.
  await yaml.fill((await yaml.inputValue()).replace(/(\n\s+)client\.id: airtruct-console/, '$1client.id: airtruct-console$1group.instance.id: one'));
  await waitFor('the YAML entry as a row', async () => (await entry('Key', 2).count()) > 0 && (await entry('Key', 2).inputValue()) === 'group.instance.id');
  assert.equal(await entry('Value', 2).inputValue(), 'one');
});

test('on a page longer than the window the sidebar runs its whole height, its links in view', async () => {
  // The builder with kafka's form (sasl open, options set) and the test panel is longer than the window.
  const measure = () =>
    page.evaluate(() => {
      const side = document.querySelector('.sidebar').getBoundingClientRect();
      const link = document.querySelector('.sidebar a').getBoundingClientRect();
      // What shows at the bottom of the window, on the left: the sidebar's dark background, not the page's.
      const bottomLeft = document.elementFromPoint(20, innerHeight - 2);
      return {
        top: side.top + scrollY,
        bottom: side.bottom + scrollY,
        page: document.documentElement.scrollHeight,
        window: innerHeight,
        link: link.top,
        bottomLeftInSidebar: Boolean(bottomLeft?.closest('.sidebar')),
      };
    });
  const before = await measure();
  assert.ok(before.page > before.window * 1.5, `a long page: ${JSON.stringify(before)}`);
  await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
  await waitFor('the end of the page', () => page.evaluate(() => scrollY + innerHeight >= document.documentElement.scrollHeight - 1));
  const end = await measure();
  assert.ok(end.top <= 0 && end.bottom >= end.page - 1, `the sidebar from the top of the page to its bottom: ${JSON.stringify(end)}`);
  assert.ok(end.bottomLeftInSidebar, `the sidebar at the bottom left of the window: ${JSON.stringify(end)}`);
  assert.ok(end.link >= 0 && end.link < end.window, `the links in the window: ${JSON.stringify(end)}`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot('long-page', { fullPage: true });
});

test('avro in the test panel: the binary step shown as its size and base64, the next step as JSON again', async () => {
  await page.getByRole('navigation').getByRole('link', { name: 'Streams', exact: true }).click();
  await page.getByRole('button', { name: 'New stream' }).click();
  await page.getByRole('heading', { name: 'New stream' }).waitFor();
  // The catalogue offers both converters.
  await page.getByRole('button', { name: '+ Add processor' }).click();
  await page.locator('.pick[data-kind=protobuf]').waitFor();
  await page.locator('.pick[data-kind=avro]').click();
  await page.locator('[data-field$=".avro.operator"]').first().waitFor();
  // The Avro specification's example record: {"a": 27, "b": "foo"} is 36 06 66 6f 6f.
  const schema = '{"type":"record","name":"test","fields":[{"name":"a","type":"long"},{"name":"b","type":"string"}]}';
  const yaml = page.getByLabel('YAML config');
  await yaml.fill(
    [
      'input:',
      '  generate:',
      `    payload: '{"a":27,"b":"foo"}'`,
      'pipeline:',
      '  processors:',
      '    - avro:',
      '        operator: from_json',
      `        schema: '${schema}'`,
      '    - avro:',
      '        operator: to_json',
      `        schema: '${schema}'`,
      'output:',
      '  drop: {}',
      '',
    ].join('\n'),
  );
  const samples = page.getByLabel('Sample messages, one per line');
  await samples.fill('{"a":27,"b":"foo"}');
  await page.getByRole('button', { name: /^Run on 1 message/ }).click();
  const table = page.getByRole('table', { name: 'Test results' });
  await table.waitFor();
  const cell = (message, step) => table.locator(`[data-message="${message}"] [data-step="${step}"]`);
  await expectText(cell(1, 1), /binary, 5 bytes: NgZmb28=/, 'the Avro bytes after from_json');
  await expectText(cell(1, 2), /"a": 27, "b": "foo"/, 'the JSON after to_json');
  const save = page.getByRole('button', { name: 'Save as test case' });
  assert.ok(await save.isEnabled(), 'a case of JSON payloads may be saved');
  // Ending with the Avro bytes: a case writes payloads as text, so none is saved from them.
  await yaml.fill((await yaml.inputValue()).replace(/\n    - avro:\n        operator: to_json\n        schema: '[^']*'/, ''));
  await page.getByRole('button', { name: /^Run on 1 message/ }).click();
  await waitFor('one step only', async () => (await table.locator('[data-step="2"]').count()) === 0);
  await waitFor('no case from binary payloads', () => save.isDisabled());
  await table.evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await shot('builder-test-panel-binary');
});
