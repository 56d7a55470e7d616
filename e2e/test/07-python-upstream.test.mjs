// Scenario 7: scenario 2 against an upstream built on the official Python SDK, which refuses any
// Host but its own authority (421): a working call proves the gate rewrote Host. The upstream
// also reports the headers it got, so the bearer token must not be among them.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { clientCredentialsProvider, connectWithOAuth, recordingFetch } from '../lib/oauth-client.mjs';
import { Stack } from '../lib/stack.mjs';

const stack = new Stack('07-python-upstream');
let upstream, gate, fetchLog, client, transport;

before(async () => {
  const as = await stack.authorizationServer();
  upstream = await stack.pythonServer();
  gate = await stack.gate({ upstream, issuer: as.issuer });
  fetchLog = recordingFetch();
  const provider = clientCredentialsProvider({ issuer: as.issuer, scope: 'mcp:tools' });
  ({ client, transport } = await connectWithOAuth(gate.mcpUrl, provider, { fetch: fetchLog }));
});

after(async () => {
  await transport?.terminateSession().catch(() => {});
  await client?.close().catch(() => {});
  await stack.stop();
});

test('a client_credentials client discovers, gets a token and initializes through the gate', () => {
  assert.equal(fetchLog.calls[0].status, 401);
  assert.equal(client.getServerVersion()?.name, 'e2e-python-upstream');
});

test('tools/list and tools/call reach the Python SDK server', async () => {
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), ['add', 'request_headers']);
  const result = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
  assert.equal(result.content[0].text, '5');
});

test('the upstream sees its own authority as Host and no Authorization header', async () => {
  const result = await client.callTool({ name: 'request_headers', arguments: {} });
  const headers = JSON.parse(result.content[0].text);
  assert.equal(headers.host, `127.0.0.1:${upstream.port}`);
  assert.equal(headers.authorization, undefined, 'the token was passed through');
  assert.ok(headers['mcp-session-id'], 'Mcp-Session-Id was forwarded');
});
