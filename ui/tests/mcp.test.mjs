// Browser tests of streams as MCP tools in the console: the MCP tools page (/tools) and the token scopes of the
// Account page, against the real binary, with the token checked on the API and on /mcp as an agent would use it.
// Run by `npm --prefix ui test` after console.test.mjs; the server and the browser are started by ./helpers.mjs.
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

const INPUT_SCHEMA = {
  type: 'object',
  properties: { qty: { type: 'integer' }, price: { type: 'integer' } },
  required: ['qty', 'price'],
};

/**
 * A stream exposing the tool `order_total`: quantity times price, answered through `sync_response`. The mapping
 * says the arguments are integers (`int!`): VRL refuses `.qty * .price` on fields of unknown type as fallible
 * (E103), and a stream saved as active must compile.
 */
const ORDER_TOTAL = {
  input: { mcp_tool: { name: 'order_total', description: 'The total of an order line: quantity times unit price', input_schema: INPUT_SCHEMA } },
  pipeline: { processors: [{ mapping: '.total = int!(.qty) * int!(.price)' }] },
  output: { sync_response: {} },
};

let stream;

test('the MCP tools page, reached by its address, shows the endpoint and says how to expose a stream', async () => {
  // The console's own path: the server serves the console there (unlike /mcp, which it answers itself).
  await page.goto(`${base}/tools`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  // The login comes back to the page asked for.
  await page.getByRole('heading', { name: 'MCP tools' }).waitFor();
  assert.match(page.url(), /\/tools$/);
  const link = page.getByRole('navigation').getByRole('link', { name: 'MCP tools', exact: true });
  assert.match((await link.getAttribute('class')) ?? '', /\bactive\b/, 'the sidebar entry marked as the page shown');
  const endpoint = page.getByRole('region', { name: 'Endpoint' });
  await expectText(endpoint.locator('code').first(), new RegExp(`^${escapeRe(base)}/mcp$`), 'the endpoint URL');
  await expectText(endpoint, /MCP tools\s+scope/, 'the scope agents need');
  await endpoint.getByRole('link', { name: 'Account page' }).waitFor();
  await expectText(page.locator('.empty'), /No stream exposes a tool yet[^]*mcp_tool[^]*sync_response/, 'how to expose a stream');
  // The example it gives is a stream the server takes.
  const example = YAML.parse(await page.locator('.empty pre').innerText());
  assert.ok(example.input.mcp_tool && example.output.sync_response, 'an mcp_tool input and a sync_response output');
  const checked = await api('POST', '/api/v1/streams/validate', { config: example });
  assert.equal(checked.status, 200);
  assert.deepEqual(checked.body.errors, [], 'the example is valid');
  assert.equal(await page.getByRole('table', { name: 'MCP tools' }).count(), 0, 'no table without tools');
  await shot('mcp-tools-empty');
  // /mcp itself is the agents' endpoint: a browser's GET there is the server's 405, not the console.
  const get = await fetch(`${base}/mcp`);
  assert.equal(get.status, 405, 'GET /mcp');
});

test('a stream with an mcp_tool input is listed with its stream and state; its input schema opens', async () => {
  const created = await api('POST', '/api/v1/streams', { name: 'totals', status: 'active', config: ORDER_TOTAL });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  stream = created.body;
  // The page polls the tools: the new one shows without a reload.
  const row = page.locator('tr[data-tool=order_total]');
  await expectText(row, /order_total[^]*quantity times unit price[^]*totals[^]*callable/, 'the tool, its description, its stream and its state');
  assert.equal(await row.getByRole('link', { name: 'totals' }).getAttribute('href'), `/streams/${stream.id}`, 'a link to its stream');
  await expectText(row.locator('.chip'), /^qty\*$/, 'its required argument qty');
  assert.match(await page.getByRole('heading', { name: 'MCP tools' }).locator('xpath=..').innerText(), /1 tool, 1 callable/, 'the count');
  // The schema is closed, then opened on a click: the JSON Schema as the API lists it.
  const schema = row.locator('details pre');
  assert.equal(await schema.isVisible(), false, 'the schema closed at first');
  await row.getByText('Input schema').click();
  await schema.waitFor({ state: 'visible' });
  const listed = (await api('GET', '/api/v1/mcp/tools')).body.find((t) => t.name === 'order_total');
  assert.deepEqual(JSON.parse(await schema.innerText()), listed.input_schema, 'the schema shown is the one listed');
  assert.deepEqual(listed.input_schema.properties, INPUT_SCHEMA.properties);
  await shot('mcp-tools');

  // A paused stream's tool is listed, not callable.
  assert.equal((await api('POST', `/api/v1/streams/${stream.id}/status`, { status: 'paused' })).status, 200);
  await page.reload();
  await expectText(row, /stream not active/, 'the state of a paused stream\'s tool');
  assert.equal((await api('POST', `/api/v1/streams/${stream.id}/status`, { status: 'active' })).status, 200);
  await page.reload();
  await expectText(row, /callable/, 'callable again');

  await row.getByRole('link', { name: 'totals' }).click();
  await page.getByRole('heading', { name: /totals/ }).waitFor();
  assert.match(page.url(), new RegExp(`/streams/${stream.id}$`));
});

test('account: a token for MCP tools only is listed with its scope, refused by the REST API, and lists the tools at /mcp', async () => {
  await page.getByRole('navigation').getByRole('link', { name: 'MCP tools', exact: true }).click();
  await page.getByRole('region', { name: 'Endpoint' }).getByRole('link', { name: 'Account page' }).click();
  await page.getByRole('heading', { name: 'Account' }).waitFor();
  // The console's own session is for the REST API.
  const session = page.locator('tr[data-token=session]', { hasText: 'this session' });
  await expectText(session, /REST API/, 'the session\'s scope');
  assert.equal(await session.locator('[data-scopes]').getAttribute('data-scopes'), 'api');

  const form = page.getByRole('form', { name: 'New token' });
  const rest = form.getByRole('checkbox', { name: 'REST API' });
  const mcp = form.getByRole('checkbox', { name: 'MCP tools' });
  const create = form.getByRole('button', { name: 'Create token' });
  assert.equal(await rest.isChecked(), true, 'REST API checked to start with');
  assert.equal(await mcp.isChecked(), false, 'MCP tools not checked to start with');
  await form.getByLabel('Name').fill('agent');
  // None checked: said, and nothing to create.
  await rest.uncheck();
  await expectText(form.getByRole('alert'), /check at least one/, 'the error of no scope');
  assert.equal(await create.isDisabled(), true, 'no token without a scope');
  await mcp.check();
  await waitFor('the error gone', async () => (await form.getByRole('alert').count()) === 0);
  await create.click();

  const shown = page.getByLabel('The new token');
  const token = await waitFor('the token shown', async () => (await shown.count()) > 0 && (await shown.inputValue()));
  await expectText(page.getByRole('status', { name: 'New token' }), /for MCP tools[^]*\/mcp/, 'the token\'s scope and where agents use it');
  const row = page.locator('tr[data-token=agent]');
  await expectText(row, /MCP tools/, 'the token listed with its scope');
  assert.doesNotMatch(await row.innerText(), /REST API/, 'and no other');
  assert.equal(await row.locator('[data-scopes]').getAttribute('data-scopes'), 'mcp');
  await shot('account-mcp-token');

  // As an agent would use it: refused by the REST API, let in at /mcp, where the stream's tool is listed.
  const bearer = { authorization: `Bearer ${token}` };
  const rejected = await fetch(`${base}/api/v1/streams`, { headers: bearer });
  assert.equal(rejected.status, 403, 'a token for MCP tools alone cannot use the REST API');
  const r = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: { ...bearer, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  const answer = JSON.parse(text);
  assert.equal(answer.id, 1);
  const tool = answer.result.tools.find((t) => t.name === 'order_total');
  assert.ok(tool, `order_total listed: ${text}`);
  assert.deepEqual(tool.inputSchema.properties, INPUT_SCHEMA.properties, 'with its input schema');

  // Shown once; revoked after a confirmation.
  await page.getByRole('button', { name: 'Done' }).click();
  assert.equal(await shown.count(), 0, 'the token is shown only once');
  await row.getByRole('button', { name: 'Revoke' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke token' }).click();
  await waitFor('the token gone', async () => (await row.count()) === 0);
});
