// Scenario 11: one gate, two real authorization servers (oidc-provider, one signing RS256, the other
// ES256), both in AUTHORIZATION_SERVER. A client of each reaches the tools with its own server's
// token; a third server the gate does not list gets its tokens refused; and when one listed server
// goes down, the other's clients are not affected.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { clientCredentialsProvider, connectWithOAuth, decodeJwt } from '../lib/oauth-client.mjs';
import { sleep } from '../lib/processes.mjs';
import { Stack, clientCredentialsToken, initializeWith } from '../lib/stack.mjs';

const stack = new Stack('11-several-issuers');
let staff, machines, stranger, gate;

before(async () => {
  staff = await stack.authorizationServer({ alg: 'RS256' });
  machines = await stack.authorizationServer({ alg: 'ES256' });
  stranger = await stack.authorizationServer({ alg: 'RS256' });
  const upstream = await stack.serverEverything();
  gate = await stack.gate({ upstream, issuer: `${staff.issuer},${machines.issuer}` });
});

after(() => stack.stop());

/** tools/list through the gate with a fixed bearer token, as a machine client configured with one. */
async function listToolsWith(token) {
  const transport = new StreamableHTTPClientTransport(new URL(gate.mcpUrl), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: 'mcp-gate-e2e-fixed-token', version: '1.0.0' });
  await client.connect(transport);
  try {
    return (await client.listTools()).tools;
  } finally {
    await transport.terminateSession().catch(() => {});
    await client.close();
  }
}

/** The status of an MCP `initialize` sent with `token`. */
const statusWith = async (token) => (await initializeWith(gate.mcpUrl, token, 'e2e-status')).status;

/** The gate's access-log lines so far. */
function accessLog() {
  return readFileSync(gate.proc.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((l) => l.msg === 'request');
}

/**
 * The number of access-log lines once the count has held still for 200 ms. The gate writes its
 * lines from a background thread, so a count taken right after a request can miss that request's
 * line, which would then be mistaken for the next test's.
 */
async function settledLogLength() {
  let n = accessLog().length;
  for (let i = 0; i < 60; i++) {
    await sleep(200);
    const now = accessLog().length;
    if (now === n) return n;
    n = now;
  }
  return n;
}

/** Waits (up to 3 s) for an access-log line that satisfies `match`; the gate writes it when the response ends. */
async function logged(match) {
  for (let i = 0; i < 60; i++) {
    const line = accessLog().find(match);
    if (line) return line;
    await sleep(50);
  }
  return undefined;
}

test('the metadata lists both servers, in the configured order', async () => {
  const metadata = await (await fetch(`${gate.url}/.well-known/oauth-protected-resource/mcp`)).json();
  assert.deepEqual(metadata.authorization_servers, [staff.issuer, machines.issuer]);
});

test('the SDK client discovers the first server through the gate and reaches the tools', async () => {
  const provider = clientCredentialsProvider({ issuer: staff.issuer, scope: 'mcp:tools' });
  const { client, transport } = await connectWithOAuth(gate.mcpUrl, provider);
  try {
    assert.equal(decodeJwt(provider.tokens().access_token).payload.iss, staff.issuer);
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'get-sum'));
  } finally {
    await transport.terminateSession().catch(() => {});
    await client.close();
  }
});

test("a client of the second server (ES256) reaches the tools with that server's token", async () => {
  const token = await clientCredentialsToken(machines, gate.mcpUrl);
  const { header, payload } = decodeJwt(token);
  assert.equal(header.alg, 'ES256');
  assert.equal(payload.iss, machines.issuer);
  const before = await settledLogLength();
  const tools = await listToolsWith(token);
  assert.ok(tools.some((t) => t.name === 'get-sum'));
  // The access log names the server whose keys accepted the token.
  const accepted = await logged((l, i) => i >= before && l.status === 200);
  assert.equal(accepted?.iss, machines.issuer, JSON.stringify(accepted));
});

test('a token for this resource from a server the gate does not list is refused as bad_issuer', async () => {
  const token = await clientCredentialsToken(stranger, gate.mcpUrl);
  assert.equal(decodeJwt(token).payload.aud, gate.mcpUrl);
  const before = await settledLogLength();
  assert.equal(await statusWith(token), 401);
  const refusal = await logged((l, i) => i >= before && l.status === 401);
  assert.equal(refusal?.reason, 'bad_issuer', JSON.stringify(refusal));
});

test('with the first server down, new tokens from both servers are still checked and served', async () => {
  // Neither token has been seen by the gate: each is verified in full after the server stops.
  const staffToken = await clientCredentialsToken(staff, gate.mcpUrl);
  const machineToken = await clientCredentialsToken(machines, gate.mcpUrl);
  await staff.proc.stop();
  // The keys loaded from the stopped server stay in use for the outage.
  assert.equal(await statusWith(staffToken), 200);
  const tools = await listToolsWith(machineToken);
  assert.ok(tools.some((t) => t.name === 'get-sum'));
  assert.equal((await fetch(`${gate.url}/readyz`)).status, 200);
});
