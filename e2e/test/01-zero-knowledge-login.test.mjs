// Scenario 1: an MCP client that knows only the gate's URL finds its way to a token by itself
// (401 → RFC 9728 metadata → RFC 8414 AS metadata → DCR → auth code + PKCE), then talks MCP
// through the gate, including a streamed tool call.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { HeadlessOAuthProvider, connectWithOAuth, decodeJwt, recordingFetch } from '../lib/oauth-client.mjs';
import { sleep } from '../lib/processes.mjs';
import { Stack } from '../lib/stack.mjs';

const stack = new Stack('01-zero-knowledge-login');
let as, gate, provider, fetchLog, client, transport;

before(async () => {
  as = await stack.authorizationServer();
  const upstream = await stack.serverEverything();
  gate = await stack.gate({ upstream, issuer: as.issuer });
  provider = new HeadlessOAuthProvider();
  fetchLog = recordingFetch();
  ({ client, transport } = await connectWithOAuth(gate.mcpUrl, provider, { fetch: fetchLog }));
});

after(async () => {
  await transport?.terminateSession().catch(() => {});
  await client?.close().catch(() => {});
  await stack.stop();
});

test('the first request gets 401 whose resource_metadata URL the client follows', () => {
  const [first, second] = fetchLog.calls;
  assert.equal(first.url, gate.mcpUrl);
  assert.equal(first.status, 401);
  const metadataUrl = first.wwwAuthenticate.match(/resource_metadata="([^"]+)"/)?.[1];
  assert.ok(metadataUrl, `no resource_metadata in ${first.wwwAuthenticate}`);
  assert.equal(second.url, metadataUrl);
  assert.equal(second.status, 200);
});

test('the client reads the AS metadata and registers itself (DCR)', () => {
  const urls = fetchLog.calls.map((c) => `${c.method} ${c.url} ${c.status}`);
  assert.ok(urls.includes(`GET ${as.issuer}/.well-known/oauth-authorization-server 200`), urls.join('\n'));
  assert.ok(urls.includes(`POST ${as.issuer}/reg 201`), urls.join('\n'));
  assert.equal(provider.registrations, 1);
});

test('the authorization request uses PKCE S256 and names the gate as resource', () => {
  assert.equal(provider.authorizationUrls.length, 1);
  const params = provider.authorizationUrls[0].searchParams;
  assert.equal(params.get('code_challenge_method'), 'S256');
  assert.ok(params.get('code_challenge'));
  assert.equal(params.get('resource'), gate.mcpUrl);
});

test('the access token is an RFC 9068 JWT whose aud is the resource', () => {
  const { header, payload } = decodeJwt(provider.tokens().access_token);
  assert.equal(header.typ, 'at+jwt');
  assert.equal(payload.aud, gate.mcpUrl);
  assert.equal(payload.iss, as.issuer);
  assert.equal(payload.sub, 'alice');
});

test('a token refreshed with the refresh token keeps the audience and is accepted', async () => {
  const { refresh_token: refreshToken } = provider.tokens();
  assert.ok(refreshToken, 'the AS issued a refresh token');
  const res = await fetch(`${as.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: provider.clientInformation().client_id }),
  });
  const refreshed = await res.json();
  assert.equal(res.status, 200, JSON.stringify(refreshed));
  assert.equal(decodeJwt(refreshed.access_token).payload.aud, gate.mcpUrl);
  const ping = await fetch(gate.mcpUrl, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${refreshed.access_token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': transport.sessionId,
      'mcp-protocol-version': transport.protocolVersion ?? '2025-06-18',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 'refreshed', method: 'ping' }),
  });
  assert.equal(ping.status, 200);
  assert.match(await ping.text(), /"id":"refreshed"/);
});

test('initialize, tools/list and tools/call pass through the gate', async () => {
  assert.equal(client.getServerVersion()?.name, 'mcp-servers/everything');
  assert.ok(transport.sessionId, 'the upstream session id reached the client');
  const { tools } = await client.listTools();
  assert.ok(tools.some((t) => t.name === 'trigger-long-running-operation'));
  const result = await client.callTool({ name: 'echo', arguments: { message: 'through the gate' } });
  assert.deepEqual(result.content, [{ type: 'text', text: 'Echo: through the gate' }]);
});

test('progress notifications stream through the gate one by one, not buffered', async () => {
  const duration = 2;
  const steps = 4;
  const started = Date.now();
  const arrivals = [];
  const result = await client.callTool(
    { name: 'trigger-long-running-operation', arguments: { duration, steps } },
    undefined,
    { onprogress: (p) => arrivals.push({ progress: p.progress, at: Date.now() - started }) },
  );
  const finished = Date.now() - started;
  assert.match(result.content[0].text, /completed/);
  assert.deepEqual(arrivals.map((a) => a.progress), [1, 2, 3, 4]);
  // The upstream sends step i at i * 500 ms; a buffering proxy would deliver them all at ~2000 ms.
  assert.ok(arrivals[0].at < 1300, `first progress arrived at ${arrivals[0].at} ms (call took ${finished} ms)`);
  assert.ok(arrivals[3].at - arrivals[0].at > 1000, `progress arrivals bunched: ${JSON.stringify(arrivals)}`);
});

test('a POST stream cut mid-call resumes with Last-Event-ID through the gate', async () => {
  const headers = {
    authorization: `Bearer ${provider.tokens().access_token}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-session-id': transport.sessionId,
    'mcp-protocol-version': transport.protocolVersion ?? '2025-06-18',
  };
  const cut = new AbortController();
  const call = await fetch(gate.mcpUrl, {
    method: 'POST',
    headers,
    signal: cut.signal,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 'resumed',
      method: 'tools/call',
      params: { name: 'trigger-long-running-operation', arguments: { duration: 1.5, steps: 3 }, _meta: { progressToken: 'resume' } },
    }),
  });
  const reader = call.body.getReader();
  let seen = '';
  while (!/^id: .+$/m.test(seen)) seen += new TextDecoder().decode((await reader.read()).value);
  const lastEventId = seen.match(/^id: (.+)$/m)[1];
  cut.abort();
  // server-everything replays from its event store when the GET arrives (it does not stream
  // later events of a cut POST to the new GET), so reconnect once the call has finished.
  await sleep(2000);

  const resumed = await fetch(gate.mcpUrl, {
    headers: { ...headers, accept: 'text/event-stream', 'last-event-id': lastEventId },
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(resumed.status, 200);
  let replay = '';
  const replayReader = resumed.body.getReader();
  while (!replay.includes('"id":"resumed"')) {
    const { value, done } = await replayReader.read();
    if (done) break;
    replay += new TextDecoder().decode(value);
  }
  await replayReader.cancel();
  assert.match(replay, /"progress":3/);
  assert.match(replay, /"id":"resumed"/, `no tool result after Last-Event-ID ${lastEventId}: ${replay}`);
});
