// Scenario 13: MCP-aware authorization (issue #10) with stateless 2026-07-28 traffic: the Python
// SDK client (e2e/py/client.py, mode pinned to 2026-07-28, so every POST carries Mcp-Method and
// Mcp-Name) and the Python SDK server (e2e/py/notes_server.py, stateless), the gate between them
// with TOOL_SCOPES='delete_note=mcp:admin'. The upstream counts delete_note calls, and read_notes
// reports the count straight from the upstream (not through the gate); the upstream's GET /hits
// counts every POST that reached it, so a test can tell that a refused call never got there. The mirrored headers must match the body (MCP Streamable HTTP
// 2026-07-28 "Server Validation"): a mismatch is 400 with JSON-RPC -32020 and the request id.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Stack, clientCredentialsToken, pythonClient } from '../lib/stack.mjs';

const stack = new Stack('13-mcp-2026-07-28');
const VERSION = '2026-07-28';
/** The gate's JSON-RPC code for a call its rules refuse (src/policy/respond.rs FORBIDDEN_CODE). */
const FORBIDDEN = -32003;
const HEADER_MISMATCH = -32020;
let as, upstream, gate, tools, admin;

before(async () => {
  as = await stack.authorizationServer();
  upstream = await stack.pythonServer({ script: 'notes_server.py' });
  gate = await stack.gate({ upstream, issuer: as.issuer, env: { TOOL_SCOPES: 'delete_note=mcp:admin' } });
  tools = await clientCredentialsToken(as, gate.mcpUrl, { scope: 'mcp:tools' });
  admin = await clientCredentialsToken(as, gate.mcpUrl, { scope: 'mcp:admin mcp:tools' });
});

after(() => stack.stop());

/** The text of a CallToolResult's first content item, parsed as JSON. */
const textJson = (result) => JSON.parse(result.content[0].text);

/** How many delete_note calls reached the upstream, asked of the upstream directly. */
async function deleteCalls(server = upstream) {
  const [answer] = await pythonClient(server.mcpUrl, 'unused-upstream-needs-no-token', [{ tool: 'read_notes' }]);
  assert.ok(answer.result, `read_notes answered directly: ${JSON.stringify(answer)}`);
  return textJson(answer.result).delete_calls;
}

/** The per-request envelope a stateless 2026-07-28 request carries in `_meta` (the server requires it). */
const META = {
  'io.modelcontextprotocol/protocolVersion': VERSION,
  'io.modelcontextprotocol/clientInfo': { name: 'e2e-raw', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

/** How many POSTs to /mcp reached the upstream at all (its GET /hits, outside MCP). */
async function upstreamPosts(server = upstream) {
  const res = await fetch(`${server.url}/hits`);
  return (await res.json()).mcp_posts;
}

/** A 2026-07-28 tools/call body. */
const callBody = (id, name, args = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, _meta: META } });

/** A raw POST with the mirrored headers set by hand; resolves { status, headers, text }. */
async function rawPost(mcpUrl, token, body, { method = body.method, name } = {}) {
  const headers = {
    authorization: `Bearer ${token}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': VERSION,
    'mcp-method': method,
  };
  if (name !== undefined) headers['mcp-name'] = name;
  const res = await fetch(mcpUrl, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** The JSON-RPC message of a JSON or SSE answer (the last `data:` of an event stream). */
function message({ headers, text }) {
  if (!(headers.get('content-type') ?? '').startsWith('text/event-stream')) return JSON.parse(text);
  const data = text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).filter(Boolean);
  return JSON.parse(data.at(-1));
}

const base64Name = (name) => `=?base64?${Buffer.from(name, 'utf8').toString('base64')}?=`;

test('the Python 2026-07-28 client calls read_notes through the gate with a mcp:tools token', async () => {
  const [read] = await pythonClient(gate.mcpUrl, tools, [{ tool: 'read_notes' }]);
  assert.ok(read.result, JSON.stringify(read));
  assert.deepEqual(textJson(read.result).notes, ['buy milk', 'rotate the signing key']);
});

test('delete_note with a mcp:tools token is refused (403 surfaced as a JSON-RPC error) and never reaches the server', async () => {
  const before = await deleteCalls();
  const posts = await upstreamPosts();
  const [refused] = await pythonClient(gate.mcpUrl, tools, [{ tool: 'delete_note', arguments: { index: 0 } }]);
  assert.equal(await upstreamPosts(), posts, 'no POST reached the upstream');
  assert.ok(refused.error, `refused: ${JSON.stringify(refused)}`);
  assert.equal(refused.error.code, FORBIDDEN);
  assert.match(refused.error.message, /delete_note/);
  assert.match(refused.error.message, /mcp:admin/);
  assert.equal(await deleteCalls(), before, 'the upstream counted no delete_note call');
  assert.equal(before, 0);
});

test('the 403 the Python client met is insufficient_scope naming mcp:admin', async () => {
  const res = await rawPost(gate.mcpUrl, tools, callBody(3, 'delete_note', { index: 0 }), { name: 'delete_note' });
  assert.equal(res.status, 403);
  assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer error="insufficient_scope", scope="[^"]*\bmcp:admin\b[^"]*", resource_metadata="/);
  assert.equal(message(res).id, 3);
  assert.equal(await deleteCalls(), 0);
});

test('delete_note with a mcp:admin mcp:tools token works', async () => {
  const [deleted] = await pythonClient(gate.mcpUrl, admin, [{ tool: 'delete_note', arguments: { index: 0 } }]);
  assert.ok(deleted.result, JSON.stringify(deleted));
  assert.equal(deleted.result.content[0].text, 'deleted: buy milk');
  assert.equal(await deleteCalls(), 1, 'the allowed call reached the server once');
});

test('Mcp-Name saying read_notes over a body calling delete_note is 400 -32020 with the id, and nothing reaches the server', async () => {
  const before = await deleteCalls();
  const posts = await upstreamPosts();
  // An admin token: the mismatch alone must stop it, whatever the token may do.
  const res = await rawPost(gate.mcpUrl, admin, callBody(41, 'delete_note', { index: 0 }), { name: 'read_notes' });
  assert.equal(res.status, 400);
  const body = message(res);
  assert.equal(body.error.code, HEADER_MISMATCH);
  assert.equal(body.id, 41);
  // The gate's words: the SDK server checks the header too, so this tells who refused it.
  assert.match(body.error.message, /^Header mismatch: Mcp-Name header does not match/);
  assert.equal(await upstreamPosts(), posts, 'no POST reached the upstream');
  assert.equal(await deleteCalls(), before, 'the upstream counted no delete_note call');
  // The same request with a matching header is forwarded (the refusal was the mismatch's).
  const matching = await rawPost(gate.mcpUrl, admin, callBody(42, 'delete_note', { index: 5 }), { name: 'delete_note' });
  assert.equal(matching.status, 200);
  assert.equal(await deleteCalls(), before + 1);
});

test('Mcp-Name as =?base64?…?= is decoded: the matching name is 200, another name is 400 -32020', async () => {
  const ok = await rawPost(gate.mcpUrl, tools, callBody(51, 'read_notes'), { name: base64Name('read_notes') });
  assert.equal(ok.status, 200);
  const answer = message(ok);
  assert.equal(answer.id, 51);
  assert.ok(textJson(answer.result).notes, `read_notes answered: ${ok.text}`);

  const posts = await upstreamPosts();
  const other = await rawPost(gate.mcpUrl, tools, callBody(52, 'read_notes'), { name: base64Name('delete_note') });
  assert.equal(other.status, 400);
  assert.equal(message(other).error.code, HEADER_MISMATCH);
  assert.equal(message(other).id, 52);
  assert.match(message(other).error.message, /^Header mismatch: /, 'refused by the gate');
  assert.equal(await upstreamPosts(), posts, 'no POST reached the upstream');
});

test('FILTER_TOOLS_LIST on a JSON upstream: the mcp:tools client lists no delete_note, the admin lists both', async () => {
  const jsonUpstream = await stack.pythonServer({ script: 'notes_server.py', args: ['--json'] });
  const filtering = await stack.gate({
    upstream: jsonUpstream,
    issuer: as.issuer,
    env: { TOOL_SCOPES: 'delete_note=mcp:admin', FILTER_TOOLS_LIST: 'true' },
  });
  const narrow = await clientCredentialsToken(as, filtering.mcpUrl, { scope: 'mcp:tools' });
  const broad = await clientCredentialsToken(as, filtering.mcpUrl, { scope: 'mcp:admin mcp:tools' });
  const names = (answer) => answer.result.tools.map((t) => t.name).sort();

  const [narrowList] = await pythonClient(filtering.mcpUrl, narrow, [{ list: true }]);
  assert.ok(narrowList.result, JSON.stringify(narrowList));
  assert.deepEqual(names(narrowList), ['read_notes']);
  const [broadList] = await pythonClient(filtering.mcpUrl, broad, [{ list: true }]);
  assert.deepEqual(names(broadList), ['delete_note', 'read_notes']);

  const raw = await rawPost(filtering.mcpUrl, narrow, { jsonrpc: '2.0', id: 61, method: 'tools/list', params: { _meta: META } });
  assert.equal(raw.status, 200);
  assert.match(raw.headers.get('content-type') ?? '', /^application\/json/, 'the upstream answered in JSON');
  assert.match(raw.headers.get('cache-control') ?? '', /\bprivate\b/);
  const listed = message(raw);
  assert.deepEqual(listed.result.tools.map((t) => t.name), ['read_notes']);
  assert.notEqual(listed.result.cacheScope, 'public');
});

test('a subscriptions/listen stream stays open through the gate well past UPSTREAM_TIMEOUT and IDLE_TIMEOUT', async () => {
  // Both timeouts at 2 s, the stream held for 6 s: UPSTREAM_TIMEOUT bounds only the wait for response
  // headers (the listen ack sends them at once), and a stream in flight is not idle.
  const short = await stack.gate({
    upstream,
    issuer: as.issuer,
    env: { TOOL_SCOPES: 'delete_note=mcp:admin', UPSTREAM_TIMEOUT: '2s', IDLE_TIMEOUT: '2s' },
  });
  const token = await clientCredentialsToken(as, short.mcpUrl, { scope: 'mcp:tools' });
  const started = Date.now();
  const [held, after] = await pythonClient(short.mcpUrl, token, [{ listen: 6 }, { tool: 'read_notes' }]);
  assert.deepEqual(held, { result: { held: 6 } }, `the listen stream: ${JSON.stringify(held)}`);
  assert.ok(Date.now() - started >= 6000);
  assert.ok(after.result, `a call after the stream: ${JSON.stringify(after)}`);
});
