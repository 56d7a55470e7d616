// Scenario 12: MCP-aware authorization (issue #10) on the 2025-11-25 body path: the TypeScript SDK
// 1.32 client sends no Mcp-* headers, so the gate decides on the JSON-RPC body alone. The gate
// runs with TOOL_SCOPES='get-env=mcp:admin' (server-everything's get-env prints the server's
// environment: an admin-only tool) and FILTER_TOOLS_LIST=true, in front of server-everything.
// A mcp:tools token lists tools without get-env and calls echo; calling get-env is 403
// insufficient_scope naming mcp:admin (RFC 6750 §3.1, MCP "Scope Challenge Handling") with the
// JSON-RPC id; the SDK client steps up with the challenged scope; a batch with one forbidden
// element is refused whole; a POLICY_FILE rewritten while serving takes effect.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { UnauthorizedError, auth, discoverAuthorizationServerMetadata, registerClient } from '@modelcontextprotocol/sdk/client/auth.js';
import { HeadlessOAuthProvider, clientCredentialsProvider, connectWithOAuth, decodeJwt, recordingFetch } from '../lib/oauth-client.mjs';
import { Stack, clientCredentialsToken } from '../lib/stack.mjs';

const stack = new Stack('12-mcp-authorization');
const policyDir = mkdtempSync(join(tmpdir(), 'mcp-gate-e2e-policy-'));
let as, upstream, gate;

before(async () => {
  as = await stack.authorizationServer();
  upstream = await stack.serverEverything();
  gate = await stack.gate({
    upstream,
    issuer: as.issuer,
    env: { TOOL_SCOPES: 'get-env=mcp:admin', FILTER_TOOLS_LIST: 'true' },
  });
});

after(async () => {
  await stack.stop();
  rmSync(policyDir, { recursive: true, force: true });
});

const ACCEPT = 'application/json, text/event-stream';

/**
 * A session opened by hand (initialize + notifications/initialized) with `token`, so that a test
 * can send exactly the JSON-RPC body it means (a batch, a call the SDK would not send).
 */
async function rawSession(mcpUrl, token) {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: ACCEPT };
  const init = await fetch(mcpUrl, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'e2e-raw', version: '1' } },
    }),
  });
  await init.text();
  assert.equal(init.status, 200, 'initialize is allowed');
  const sessionId = init.headers.get('mcp-session-id');
  assert.ok(sessionId, 'server-everything opened a session');
  const post = async (body) => {
    const res = await fetch(mcpUrl, {
      method: 'POST',
      headers: { ...headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, text: await res.text() };
  };
  const initialized = await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
  assert.equal(initialized.status, 202);
  return { post };
}

const toolCall = (id, name, args = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

/** A fetch that also records, per POST, the JSON-RPC method and the response's media type and Cache-Control. */
function mediaRecordingFetch() {
  const calls = [];
  const recorder = async (input, init) => {
    const res = await fetch(input, init);
    let method;
    try {
      method = JSON.parse(init?.body ?? 'null')?.method;
    } catch {
      method = undefined;
    }
    calls.push({ method, status: res.status, contentType: res.headers.get('content-type'), cacheControl: res.headers.get('cache-control') });
    return res;
  };
  recorder.calls = calls;
  return recorder;
}

test('a mcp:tools client gets tools/list without the admin tool (filtered SSE) and can call echo', async () => {
  const fetchLog = mediaRecordingFetch();
  const provider = clientCredentialsProvider({ issuer: as.issuer, scope: 'mcp:tools' });
  const { client, transport } = await connectWithOAuth(gate.mcpUrl, provider, { fetch: fetchLog });
  try {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    assert.ok(names.includes('echo'), `echo is listed: ${names}`);
    assert.ok(names.includes('get-sum'), `tools no rule names stay listed: ${names}`);
    assert.ok(!names.includes('get-env'), `get-env is filtered out: ${names}`);
    const listed = fetchLog.calls.find((c) => c.method === 'tools/list');
    assert.equal(listed.status, 200);
    assert.match(listed.contentType, /^text\/event-stream/, 'server-everything answered in SSE, rewritten as it streamed');
    assert.match(listed.cacheControl ?? '', /\bprivate\b/, 'a filtered answer is private to its caller');

    const result = await client.callTool({ name: 'echo', arguments: { message: 'through the policy' } });
    assert.match(result.content[0].text, /through the policy/);
  } finally {
    await transport.terminateSession().catch(() => {});
    await client.close();
  }
});

test('an admin token sees get-env in tools/list (the filter, not the upstream, hides it)', async () => {
  const token = await clientCredentialsToken(as, gate.mcpUrl, { scope: 'mcp:tools mcp:admin' });
  const session = await rawSession(gate.mcpUrl, token);
  const res = await session.post({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
  assert.equal(res.status, 200);
  assert.match(res.text, /"get-env"/, 'an admin token sees get-env');
});

test('a mcp:tools token calling get-env gets 403 insufficient_scope naming mcp:admin, with the JSON-RPC id', async () => {
  const session = await rawSession(gate.mcpUrl, await clientCredentialsToken(as, gate.mcpUrl, { scope: 'mcp:tools' }));
  const allowed = await session.post(toolCall(6, 'echo', { message: 'hi' }));
  assert.equal(allowed.status, 200, 'the same session and request shape is allowed for echo');

  const res = await session.post(toolCall(7, 'get-env'));
  assert.equal(res.status, 403);
  const challenge = res.headers.get('www-authenticate') ?? '';
  assert.match(challenge, /^Bearer /);
  assert.match(challenge, /error="insufficient_scope"/);
  assert.match(challenge, /scope="[^"]*\bmcp:admin\b[^"]*"/);
  assert.doesNotMatch(challenge, /offline_access/);
  assert.match(challenge, new RegExp(`resource_metadata="${gate.url}/\\.well-known/oauth-protected-resource[^"]*"`));
  const body = JSON.parse(res.text);
  assert.equal(body.jsonrpc, '2.0');
  assert.equal(body.id, 7, 'the body carries the JSON-RPC id');
  assert.match(body.error.message, /get-env/);
  assert.match(body.error.message, /mcp:admin/);
});

test('a JSON-RPC batch with one forbidden element is refused whole with 403', async () => {
  const session = await rawSession(gate.mcpUrl, await clientCredentialsToken(as, gate.mcpUrl, { scope: 'mcp:tools' }));
  const refused = await session.post([toolCall(11, 'echo', { message: 'a' }), toolCall(12, 'get-env')]);
  assert.equal(refused.status, 403);
  assert.match(refused.headers.get('www-authenticate') ?? '', /error="insufficient_scope", scope="[^"]*\bmcp:admin\b/);
  assert.equal(JSON.parse(refused.text).id, 12, 'the refusal names the forbidden element');
  // The same batch without the forbidden element is not the gate's to refuse (the upstream answers it).
  const passed = await session.post([toolCall(13, 'echo', { message: 'a' }), toolCall(14, 'echo', { message: 'b' })]);
  assert.equal(passed.status, 200);
});

test('step-up: the SDK client re-authorizes with the challenged scope, and the retried get-env succeeds', async () => {
  // TS SDK 1.32 (client/streamableHttp.js send()): on 403 with error="insufficient_scope" it takes
  // `scope` from the challenge and calls auth(provider, { scope }). For an auth-code client that
  // starts a new authorization (redirectToAuthorization) and returns 'REDIRECT', so the call
  // rejects with UnauthorizedError; the app finishes the login (transport.finishAuth(code)) and
  // calls again, as after any redirect. No refresh token: a refresh keeps the old scopes.
  const provider = new HeadlessOAuthProvider({ grantTypes: ['authorization_code'] });
  const fetchLog = recordingFetch();
  // Registered for both scopes (oidc-provider refuses a client any scope it was not registered for).
  const metadata = await discoverAuthorizationServerMetadata(as.issuer);
  provider.saveClientInformation(
    await registerClient(as.issuer, { metadata, clientMetadata: provider.clientMetadata, scope: 'mcp:tools mcp:admin' }),
  );
  assert.equal(await auth(provider, { serverUrl: gate.mcpUrl, scope: 'mcp:tools', fetchFn: fetchLog }), 'REDIRECT');
  assert.equal(await auth(provider, { serverUrl: gate.mcpUrl, authorizationCode: provider.takeCode(), fetchFn: fetchLog }), 'AUTHORIZED');
  assert.doesNotMatch(decodeJwt(provider.tokens().access_token).payload.scope, /mcp:admin/);

  const { client, transport } = await connectWithOAuth(gate.mcpUrl, provider, { fetch: fetchLog });
  try {
    const echoed = await client.callTool({ name: 'echo', arguments: { message: 'narrow' } });
    assert.match(echoed.content[0].text, /narrow/);
    assert.equal(provider.authorizationUrls.length, 1, 'no step-up needed for echo');

    await assert.rejects(client.callTool({ name: 'get-env', arguments: {} }), UnauthorizedError, 'the SDK stops for the new login');
    const refusal = fetchLog.calls.find((c) => c.url === gate.mcpUrl && c.status === 403);
    assert.ok(refusal, 'get-env met a 403');
    assert.match(refusal.wwwAuthenticate, /error="insufficient_scope"/);
    assert.equal(provider.authorizationUrls.length, 2, 'the SDK started a new authorization by itself');
    assert.match(provider.authorizationUrls[1].searchParams.get('scope'), /\bmcp:admin\b/, 'with the challenged scope');
    assert.equal(provider.authorizationUrls[1].searchParams.get('resource'), gate.mcpUrl);

    await transport.finishAuth(provider.takeCode());
    assert.match(decodeJwt(provider.tokens().access_token).payload.scope, /\bmcp:admin\b/);
    const result = await client.callTool({ name: 'get-env', arguments: {} });
    assert.ok(!result.isError, 'the retried get-env succeeded');
    assert.match(result.content[0].text, /PATH|PORT/, 'get-env printed the environment');
    assert.equal(provider.registrations, 1, 'the same registered client');
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'get-env'), 'the stepped-up token sees get-env in tools/list');
  } finally {
    await transport.terminateSession().catch(() => {});
    await client.close();
  }
});

const GET_ENV_ADMIN = `[[rule]]\nmethod = "tools/call"\nname = "get-env"\nall_of = ["mcp:admin"]\n`;
const ECHO_DENIED = `[[rule]]\nmethod = "tools/call"\nname = "echo"\ndeny = true\n`;

/** Polls `check` until it holds or `ms` pass; resolves whether it held. */
async function eventually(check, ms) {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await sleep(250);
  }
}

test(
  'a POLICY_FILE rewritten while serving takes effect, and a broken version keeps the last good one',
  async () => {
    const file = join(policyDir, 'policy.toml');
    writeFileSync(file, GET_ENV_ADMIN);
    const reloading = await stack.gate({
      upstream,
      issuer: as.issuer,
      env: { POLICY_FILE: file, POLICY_RELOAD_INTERVAL: '1s' },
    });
    const token = await clientCredentialsToken(as, reloading.mcpUrl, { scope: 'mcp:tools' });
    const session = await rawSession(reloading.mcpUrl, token);
    assert.equal((await session.post(toolCall(1, 'get-env'))).status, 403, 'the first policy reserves get-env');
    assert.equal((await session.post(toolCall(2, 'echo', { message: 'x' }))).status, 200);

    writeFileSync(file, ECHO_DENIED);
    const swapped = await eventually(async () => (await session.post(toolCall(3, 'echo', { message: 'x' }))).status === 403, 8000);
    assert.ok(swapped, 'within 8 s (POLICY_RELOAD_INTERVAL=1s) the new file denies echo');
    assert.equal((await session.post(toolCall(4, 'get-env'))).status, 200, 'and no longer reserves get-env');

    writeFileSync(file, '[[rule]]\nmethod = 3\n');
    await sleep(3000);
    assert.equal((await session.post(toolCall(5, 'echo', { message: 'x' }))).status, 403, 'the broken file kept the last good policy');
    assert.equal((await session.post(toolCall(6, 'get-env'))).status, 200);
  },
);
