// Scenario 12: opaque access tokens decided by introspection (RFC 7662) at the real oidc-provider.
// The AS issues opaque tokens for a resource under `/opaque/` (a second audience of this gate); the gate (TOKEN_VALIDATION=auto)
// introspects them as the confidential client mcp-cc, still verifies JWTs locally, and refuses a
// revoked token once INTROSPECTION_CACHE_MAX_AGE has passed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort } from '../lib/processes.mjs';
import { Stack, initializeWith } from '../lib/stack.mjs';

const stack = new Stack('14-opaque-tokens');
let as, gate, opaqueResource;

const basic = 'Basic ' + Buffer.from('mcp-cc:mcp-cc-secret').toString('base64');

/** A client_credentials token from the AS for `resource`. */
async function tokenFor(resource) {
  const res = await fetch(`${as.issuer}/token`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'mcp:tools' }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()).access_token;
}

before(async () => {
  as = await stack.authorizationServer();
  const upstream = await stack.serverEverything();
  const port = await freePort();
  opaqueResource = `http://127.0.0.1:${port}/opaque/mcp`;
  gate = await stack.gate({
    upstream,
    issuer: as.issuer,
    port,
    env: {
      EXPECTED_AUDIENCE: `http://127.0.0.1:${port}/mcp,${opaqueResource}`,
      TOKEN_VALIDATION: 'auto',
      INTROSPECTION_CLIENT_ID: 'mcp-cc',
      INTROSPECTION_CLIENT_SECRET: 'mcp-cc-secret',
      INTROSPECTION_CACHE_MAX_AGE: '2s',
    },
  });
});

after(async () => {
  await stack.stop();
});

test('an opaque token is introspected and reaches the tools', async () => {
  const token = await tokenFor(opaqueResource);
  assert.ok(!token.includes('.'), 'the AS issued an opaque token');
  assert.equal((await initializeWith(gate.mcpUrl, token)).status, 200);
});

test('a JWT is still verified locally', async () => {
  const token = await tokenFor(gate.mcpUrl);
  assert.equal(token.split('.').length, 3);
  assert.equal((await initializeWith(gate.mcpUrl, token)).status, 200);
});

test('a revoked opaque token is refused once the cache bound has passed', async () => {
  const token = await tokenFor(opaqueResource);
  assert.equal((await initializeWith(gate.mcpUrl, token)).status, 200);
  const revoked = await fetch(`${as.issuer}/token/revocation`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
  });
  assert.equal(revoked.status, 200);
  await new Promise((r) => setTimeout(r, 2500));
  const after = await initializeWith(gate.mcpUrl, token);
  assert.equal(after.status, 401);
  assert.match(after.wwwAuthenticate, /error="invalid_token"/);
});

test('an unknown opaque token is refused with invalid_token', async () => {
  const res = await initializeWith(gate.mcpUrl, 'not-a-token-the-as-issued');
  assert.equal(res.status, 401);
});
