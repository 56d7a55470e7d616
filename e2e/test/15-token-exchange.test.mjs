// Scenario 15: token exchange (RFC 8693) at the real oidc-provider. The gate (TOKEN_EXCHANGE=true,
// token endpoint from the AS metadata, confidential client mcp-exchange) exchanges each caller's
// token for one whose audience is the upstream's own resource; a recording upstream shows exactly
// which token reached it. An exchange the AS refuses is 502 and nothing reaches the upstream. A third
// gate also sets identity headers (CLAIM_HEADERS) from the verified token: the upstream sees the
// gate's values, never a client's spoofed ones, not even when the client names them in Connection.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, test } from 'node:test';
import { Stack, clientCredentialsToken, initializeWith } from '../lib/stack.mjs';

const stack = new Stack('15-token-exchange');
let as, upstream, gate, refusedUpstream, refusingGate, target, identityUpstream, identityGate;

const exchangeEnv = (resource) => ({
  TOKEN_EXCHANGE: 'true',
  TOKEN_EXCHANGE_RESOURCE: resource,
  TOKEN_EXCHANGE_SCOPE: 'mcp:read',
  TOKEN_EXCHANGE_CLIENT_ID: 'mcp-exchange',
  TOKEN_EXCHANGE_CLIENT_SECRET: 'mcp-cc-secret',
});

const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url'));

before(async () => {
  as = await stack.authorizationServer();
  upstream = await stack.recordingUpstream();
  // The upstream's own resource: what its tokens must be for (an API behind the MCP server).
  target = `${upstream.url}/billing`;
  gate = await stack.gate({ upstream, issuer: as.issuer, env: exchangeEnv(target) });
  refusedUpstream = await stack.recordingUpstream();
  // The AS issues tokens for local resources only: this exchange is refused (invalid_target).
  refusingGate = await stack.gate({
    upstream: refusedUpstream,
    issuer: as.issuer,
    env: exchangeEnv('https://billing.example.com/api'),
  });
  identityUpstream = await stack.recordingUpstream();
  identityGate = await stack.gate({
    upstream: identityUpstream,
    issuer: as.issuer,
    env: {
      ...exchangeEnv(`${identityUpstream.url}/billing`),
      CLAIM_HEADERS: 'sub=X-Auth-Subject,client_id=X-Auth-Client-Id,scope=X-Auth-Scope',
    },
  });
});

// node:http, not fetch: fetch refuses to send a Connection header, which is the point here.
function rawPost(url, headers) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
    const req = httpRequest(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}

after(async () => {
  await stack.stop();
});

test('the upstream receives an exchanged token for its own audience, never the caller\'s', async () => {
  const callerToken = await clientCredentialsToken(as, gate.mcpUrl);
  assert.equal((await initializeWith(gate.mcpUrl, callerToken)).status, 200);
  assert.equal((await initializeWith(gate.mcpUrl, callerToken)).status, 200);
  const seen = await upstream.seen();
  assert.equal(seen.length, 2);
  for (const request of seen) {
    for (const [name, value] of Object.entries(request.headers)) {
      assert.ok(!String(value).includes(callerToken), `the caller's token reached the upstream in ${name}`);
    }
  }
  const [scheme, exchanged] = seen[0].headers.authorization.split(' ');
  assert.equal(scheme, 'Bearer');
  assert.notEqual(exchanged, callerToken);
  const caller = claimsOf(callerToken);
  const issued = claimsOf(exchanged);
  assert.equal(issued.aud, target, 'the exchanged token is for the upstream\'s resource');
  assert.equal(caller.aud, gate.mcpUrl);
  assert.equal(issued.sub, caller.sub, 'on behalf of the same subject');
  assert.equal(issued.iss, as.issuer);
  assert.equal(issued.scope, 'mcp:read');
  assert.equal(seen[1].headers.authorization, seen[0].headers.authorization, 'the second request reused the cached exchange');
});

test('an exchange the authorization server refuses is 502 and the upstream gets nothing', async () => {
  const callerToken = await clientCredentialsToken(as, refusingGate.mcpUrl);
  const res = await fetch(refusingGate.mcpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${callerToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  assert.equal(res.status, 502);
  assert.equal((await res.json()).error, 'bad_gateway');
  assert.deepEqual(await refusedUpstream.seen(), []);
});

test('identity headers come from the verified token: spoofed ones never reach the upstream, not even via Connection', async () => {
  const callerToken = await clientCredentialsToken(as, identityGate.mcpUrl);
  const caller = claimsOf(callerToken);
  const spoofed = {
    'x-auth-subject': 'admin',
    'x-auth-client-id': 'admin-client',
    'x-forwarded-user': 'admin',
    'x-remote-user': 'admin',
    'x-auth-request-email': 'admin@example.com',
  };
  assert.equal(await rawPost(identityGate.mcpUrl, { authorization: `Bearer ${callerToken}`, ...spoofed }), 200);
  // Naming them in Connection (hop-by-hop) must neither smuggle a value nor drop the gate's own.
  assert.equal(await rawPost(identityGate.mcpUrl, {
    authorization: `Bearer ${callerToken}`,
    ...spoofed,
    connection: 'keep-alive, X-Auth-Subject, X-Auth-Client-Id, X-Auth-Scope',
  }), 200);
  const seen = await identityUpstream.seen();
  assert.equal(seen.length, 2);
  for (const { headers } of seen) {
    assert.equal(headers['x-auth-client-id'], caller.client_id, 'the verified client_id');
    assert.equal(headers['x-auth-scope'], caller.scope, 'the verified scope');
    assert.equal(headers['x-auth-subject'], caller.sub, 'the verified sub, or none when the token has none');
    for (const name of ['x-forwarded-user', 'x-remote-user', 'x-auth-request-email']) {
      assert.equal(headers[name], undefined, `${name} from the client reached the upstream`);
    }
    for (const value of Object.values(headers)) {
      assert.ok(!String(value).includes(callerToken), 'the caller\'s token reached the upstream');
      assert.ok(!String(value).includes('admin'), `a spoofed value reached the upstream: ${value}`);
    }
    assert.match(headers.authorization, /^Bearer /, 'the exchanged token');
  }
});
