// Scenario 5: the gate requires a scope (REQUIRED_SCOPES=mcp:admin). A valid token without it
// gets 403 insufficient_scope naming the scope (RFC 6750 §3.1, MCP 2025-11-25 step-up), and the
// same client succeeds after re-authorizing with the scope the challenge named.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { auth, discoverAuthorizationServerMetadata, registerClient } from '@modelcontextprotocol/sdk/client/auth.js';
import { HeadlessOAuthProvider, connectWithOAuth, decodeJwt, recordingFetch } from '../lib/oauth-client.mjs';
import { Stack, clientCredentialsToken, initializeWith } from '../lib/stack.mjs';

const stack = new Stack('05-scope-step-up');
let as, gate;

before(async () => {
  as = await stack.authorizationServer();
  const upstream = await stack.serverEverything();
  gate = await stack.gate({ upstream, issuer: as.issuer, env: { REQUIRED_SCOPES: 'mcp:admin' } });
});

after(() => stack.stop());

const initialize = (token) => initializeWith(gate.mcpUrl, token, 'e2e-scope');

test('a token without the required scope gets 403 insufficient_scope naming the scope', async () => {
  const { status, wwwAuthenticate } = await initialize(await clientCredentialsToken(as, gate.mcpUrl, { scope: 'mcp:tools' }));
  assert.equal(status, 403);
  assert.match(wwwAuthenticate, /^Bearer /);
  assert.match(wwwAuthenticate, /error="insufficient_scope"/);
  assert.match(wwwAuthenticate, /scope="[^"]*\bmcp:admin\b[^"]*"/);
  assert.match(wwwAuthenticate, /resource_metadata="[^"]+"/);
});

test('a token with the required scope is let through', async () => {
  const { status } = await initialize(await clientCredentialsToken(as, gate.mcpUrl, { scope: 'mcp:tools mcp:admin' }));
  assert.equal(status, 200);
});

test('an SDK client holding a narrower token re-authorizes with the challenged scope and then succeeds', async () => {
  // No refresh token: a refresh keeps the old scopes, so step-up needs a new authorization.
  const provider = new HeadlessOAuthProvider({ grantTypes: ['authorization_code'] });
  const fetchLog = recordingFetch();
  // Registered for both scopes: the SDK's own DCR would register only the scope it first asks for,
  // and oidc-provider then refuses any other scope for that client (invalid_scope).
  const metadata = await discoverAuthorizationServerMetadata(as.issuer);
  provider.saveClientInformation(
    await registerClient(as.issuer, { metadata, clientMetadata: provider.clientMetadata, scope: 'mcp:tools mcp:admin' }),
  );
  // The client first logs in for mcp:tools only (as it would have before the policy required more).
  assert.equal(await auth(provider, { serverUrl: gate.mcpUrl, scope: 'mcp:tools', fetchFn: fetchLog }), 'REDIRECT');
  assert.equal(await auth(provider, { serverUrl: gate.mcpUrl, authorizationCode: provider.takeCode(), fetchFn: fetchLog }), 'AUTHORIZED');
  const clientId = provider.clientInformation().client_id;
  assert.doesNotMatch(decodeJwt(provider.tokens().access_token).payload.scope, /mcp:admin/);

  const { client, transport } = await connectWithOAuth(gate.mcpUrl, provider, { fetch: fetchLog });
  try {
    const refusal = fetchLog.calls.find((c) => c.url === gate.mcpUrl && c.status === 403);
    assert.ok(refusal, 'the narrow token met a 403');
    assert.match(refusal.wwwAuthenticate, /error="insufficient_scope"/);
    assert.equal(provider.authorizationUrls.length, 2);
    assert.match(provider.authorizationUrls[1].searchParams.get('scope'), /\bmcp:admin\b/);
    assert.equal(provider.clientInformation().client_id, clientId, 'the same registered client');
    assert.equal(provider.registrations, 1);
    assert.match(decodeJwt(provider.tokens().access_token).payload.scope, /\bmcp:admin\b/);
    const { tools } = await client.listTools();
    assert.ok(tools.length > 0);
  } finally {
    await transport.terminateSession().catch(() => {});
    await client.close();
  }
});
