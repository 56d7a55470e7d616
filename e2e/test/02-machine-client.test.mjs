// Scenario 2: a machine client (client_credentials, pre-registered confidential client) discovers
// the AS through the gate and reaches the tools with a token minted for the gate's resource.
// UPSTREAM_TIMEOUT is short here: it bounds the wait for response headers, never a live stream.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { clientCredentialsProvider, connectWithOAuth, decodeJwt, recordingFetch } from '../lib/oauth-client.mjs';
import { Stack } from '../lib/stack.mjs';

const stack = new Stack('02-machine-client');
let as, gate, provider, fetchLog, client, transport;

before(async () => {
  as = await stack.authorizationServer();
  const upstream = await stack.serverEverything();
  gate = await stack.gate({ upstream, issuer: as.issuer, env: { UPSTREAM_TIMEOUT: '2s' } });
  provider = clientCredentialsProvider({ issuer: as.issuer, scope: 'mcp:tools' });
  fetchLog = recordingFetch();
  ({ client, transport } = await connectWithOAuth(gate.mcpUrl, provider, { fetch: fetchLog }));
});

after(async () => {
  await transport?.terminateSession().catch(() => {});
  await client?.close().catch(() => {});
  await stack.stop();
});

test('the client goes 401 → protected resource metadata → AS metadata → token, with no registration', () => {
  const steps = fetchLog.calls.map((c) => `${c.method} ${new URL(c.url).pathname} ${c.status}`);
  assert.deepEqual(steps.slice(0, 4), [
    'POST /mcp 401',
    'GET /.well-known/oauth-protected-resource/mcp 200',
    'GET /.well-known/oauth-authorization-server 200',
    'POST /token 200',
  ]);
  assert.ok(!steps.some((s) => s.includes('/reg')), steps.join('\n'));
});

test('the client_credentials token is a JWT for the resource with the client as subject', () => {
  const { header, payload } = decodeJwt(provider.tokens().access_token);
  assert.equal(header.typ, 'at+jwt');
  assert.equal(payload.aud, gate.mcpUrl);
  assert.equal(payload.client_id, 'mcp-cc');
  assert.equal(payload.sub, 'mcp-cc');
});

test('initialize, tools/list and tools/call pass through the gate', async () => {
  assert.equal(client.getServerVersion()?.name, 'mcp-servers/everything');
  const { tools } = await client.listTools();
  assert.ok(tools.some((t) => t.name === 'get-sum'));
  const result = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } });
  assert.match(result.content[0].text, /42/);
});

test('progress notifications stream through the gate one by one', async () => {
  const started = Date.now();
  const arrivals = [];
  await client.callTool(
    { name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 4 } },
    undefined,
    { onprogress: () => arrivals.push(Date.now() - started) },
  );
  assert.equal(arrivals.length, 4);
  assert.ok(arrivals[0] < 1300 && arrivals[3] - arrivals[0] > 1000, `arrivals at ${arrivals.join(', ')} ms`);
});

test('the standalone GET stream carries server notifications beyond UPSTREAM_TIMEOUT', async () => {
  const started = Date.now();
  const arrivals = [];
  let lateArrival;
  const late = new Promise((resolve) => {
    lateArrival = resolve;
  });
  client.setNotificationHandler(LoggingMessageNotificationSchema, () => {
    arrivals.push(Date.now() - started);
    if (arrivals.at(-1) > 3000) lateArrival();
  });
  // server-everything then logs once at once and every 5 s on the session's GET stream.
  await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
  const timer = setTimeout(lateArrival, 9000);
  await late;
  clearTimeout(timer);
  await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
  assert.ok(arrivals.some((at) => at > 3000), `notifications at ${arrivals.join(', ')} ms; none after the 2 s upstream timeout`);
});
