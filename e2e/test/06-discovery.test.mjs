// Scenario 6: discovery as Claude.ai and strict RFC 9728 clients do it, with plain HTTP.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Stack } from '../lib/stack.mjs';

const stack = new Stack('06-discovery');
let as, gate;

before(async () => {
  as = await stack.authorizationServer();
  const upstream = await stack.serverEverything();
  gate = await stack.gate({ upstream, issuer: as.issuer });
});

after(() => stack.stop());

async function get(url) {
  const res = await fetch(url);
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** RFC 8414 §3: the well-known string goes between the host and the issuer's path. */
function authorizationServerMetadataUrl(issuer) {
  const url = new URL(issuer);
  const path = url.pathname === '/' ? '' : url.pathname;
  return `${url.origin}/.well-known/oauth-authorization-server${path}`;
}

test('root and path-inserted metadata both answer 200 JSON with identical bodies', async () => {
  const root = await get(`${gate.url}/.well-known/oauth-protected-resource`);
  const inserted = await get(`${gate.url}/.well-known/oauth-protected-resource/mcp`);
  assert.equal(root.status, 200);
  assert.equal(inserted.status, 200);
  assert.match(root.contentType, /^application\/json/);
  assert.match(inserted.contentType, /^application\/json/);
  assert.equal(root.body, inserted.body);
});

test('resource equals the URL the client used, byte for byte', async () => {
  const metadata = JSON.parse((await get(`${gate.url}/.well-known/oauth-protected-resource/mcp`)).body);
  assert.equal(metadata.resource, gate.mcpUrl);
});

test("each authorization_servers entry equals the issuer in that AS's own metadata", async () => {
  const metadata = JSON.parse((await get(`${gate.url}/.well-known/oauth-protected-resource/mcp`)).body);
  assert.ok(Array.isArray(metadata.authorization_servers) && metadata.authorization_servers.length > 0);
  for (const entry of metadata.authorization_servers) {
    const asMetadata = await get(authorizationServerMetadataUrl(entry));
    assert.equal(asMetadata.status, 200, `AS metadata for ${entry}`);
    assert.equal(JSON.parse(asMetadata.body).issuer, entry);
  }
  assert.deepEqual(metadata.authorization_servers, [as.issuer]);
});

test("the 401's resource_metadata URL answers 200 with the same document", async () => {
  const res = await fetch(gate.mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  await res.body?.cancel();
  assert.equal(res.status, 401);
  const challenge = res.headers.get('www-authenticate') ?? '';
  assert.match(challenge, /^Bearer /);
  const metadataUrl = challenge.match(/resource_metadata="([^"]+)"/)?.[1];
  assert.ok(metadataUrl, `no resource_metadata in ${challenge}`);
  const fromChallenge = await get(metadataUrl);
  assert.equal(fromChallenge.status, 200);
  assert.equal(fromChallenge.body, (await get(`${gate.url}/.well-known/oauth-protected-resource/mcp`)).body);
});
