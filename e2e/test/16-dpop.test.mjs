// Scenario 16: DPoP (RFC 9449) end to end with real components. A client built on `jose` keeps a
// P-256 key, sends a proof to oidc-provider's token endpoint (AS_DPOP=true) and gets a DPoP-bound
// access token (`token_type: DPoP`, `cnf.jkt` = its key's RFC 7638 thumbprint); the official MCP
// TypeScript SDK client then lists and calls tools through the gate with a fetch that adds
// `Authorization: DPoP <token>` and a fresh ES256 proof (htm, htu from RESOURCE_URI, iat, jti, ath)
// to every request. Every refusal of issue #13 is then sent to the real gate with real tokens: its
// exact status and challenges (the DPoP one with the error, the Bearer one beside it) and an
// upstream that saw no POST (a counting forwarder sits between the gates and server-everything).
// A second gate runs with DPOP_REQUIRED=true, a third with DPOP_NONCE=true (nonce handling in the
// client's fetch: `use_dpop_nonce` → resend with `DPoP-Nonce`). Not here: a certificate-bound
// token (cnf.x5t#S256), which oidc-provider issues only over mutual TLS (tests/it/dpop.rs covers it).
import assert from 'node:assert/strict';
import { createCipheriv, createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createServer, request } from 'node:http';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SignJWT, calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair } from 'jose';
import { Stack, clientCredentialsToken } from '../lib/stack.mjs';

const stack = new Stack('16-dpop');
/** The gate's DPOP_ALGORITHMS default, as every DPoP challenge names it. */
const ALGS = 'ES256 ES384 EdDSA PS256 RS256';
const BAD_PROOF = 'The DPoP proof is invalid';
const NONCE_KEY = randomBytes(32);
let as, upstream, gate, required, nonceGate;

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const ath = (token) => b64url(createHash('sha256').update(token).digest());

/** A DPoP client's key pair: the public JWK that goes in every proof and its thumbprint. */
class DpopKey {
  static async create() {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const key = new DpopKey();
    key.privateKey = privateKey;
    key.jwk = await exportJWK(publicKey);
    key.privateJwk = await exportJWK(privateKey);
    key.jkt = await calculateJwkThumbprint(key.jwk);
    return key;
  }

  /**
   * A proof for `htm` `htu` (with `ath` of `token` when given, `nonce` when given); `header` and
   * `claims` override members before signing with ES256.
   */
  proof({ htm = 'POST', htu, token, nonce, header = {}, claims = {} }) {
    const payload = { jti: randomUUID(), htm, htu, iat: now() };
    if (token) payload.ath = ath(token);
    if (nonce) payload.nonce = nonce;
    return new SignJWT({ ...payload, ...claims })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: this.jwk, ...header })
      .sign(this.privateKey);
  }
}

/** A JWS made by hand with `alg` in the header and `signature` as given (for none and HS256). */
function handMadeProof(header, claims, sign) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${sign(input)}`;
}

/**
 * A client_credentials token from the AS for `resource`, bound to `key` by a proof at the token
 * endpoint; asserts the AS says so (token_type DPoP, cnf.jkt = the key's thumbprint).
 */
async function boundToken(resource, key) {
  const proof = await key.proof({ htu: as.tokenUrl });
  const res = await fetch(as.tokenUrl, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from('mcp-cc:mcp-cc-secret').toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      dpop: proof,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'mcp:tools' }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.token_type, 'DPoP');
  const claims = decodeJwt(body.access_token);
  assert.equal(claims.cnf?.jkt, key.jkt, 'the AS bound the token to the proof key');
  assert.equal(claims.aud, resource);
  return body.access_token;
}

/**
 * A fetch for the SDK transport that presents `token` with the DPoP scheme and a fresh proof for
 * each request (htu = the request URL without query and fragment). It keeps the last `DPoP-Nonce`
 * the gate sent, and on 401 `use_dpop_nonce` resends once with the new one (RFC 9449 §8.2).
 */
function dpopFetch(key, token) {
  let nonce;
  const calls = [];
  const send = async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const htu = `${url.origin}${url.pathname}`;
    const method = init.method ?? 'GET';
    const headers = new Headers(init.headers);
    headers.set('authorization', `DPoP ${token}`);
    headers.set('dpop', await key.proof({ htm: method, htu, token, nonce }));
    const res = await fetch(input, { ...init, headers });
    calls.push({ method, status: res.status, wwwAuthenticate: res.headers.get('www-authenticate') });
    nonce = res.headers.get('dpop-nonce') ?? nonce;
    return res;
  };
  const wrapped = async (input, init = {}) => {
    const res = await send(input, init);
    if (res.status === 401 && /error="use_dpop_nonce"/.test(res.headers.get('www-authenticate') ?? '')) {
      await res.body?.cancel();
      return send(input, init);
    }
    return res;
  };
  wrapped.calls = calls;
  return wrapped;
}

/**
 * A forwarder between the gates and server-everything that counts the POSTs reaching the upstream
 * (GET streams the SDK keeps open are not counted: they may reconnect at any time).
 */
async function countingForwarder(target) {
  const counter = { posts: 0 };
  const server = createServer((req, res) => {
    if (req.method === 'POST') counter.posts += 1;
    const out = request(`${target.url}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  counter.url = `http://127.0.0.1:${server.address().port}`;
  counter.close = () => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  };
  return counter;
}

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'e2e-dpop', version: '1' } },
});

/**
 * POSTs an MCP initialize to `url` with `headers` (node:http, so that every WWW-Authenticate header
 * is seen on its own); resolves { status, challenges, nonce, body }.
 */
function post(url, headers) {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => {
          const challenges = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            if (res.rawHeaders[i].toLowerCase() === 'www-authenticate') challenges.push(res.rawHeaders[i + 1]);
          }
          resolve({ status: res.statusCode, challenges, nonce: res.headers['dpop-nonce'], body });
        });
      },
    );
    req.on('error', reject);
    req.end(INITIALIZE);
  });
}

/** `Authorization: DPoP <token>` with `proof` in a DPoP header (an array: one header each). */
function postDpop(g, token, proof) {
  const headers = { authorization: `DPoP ${token}` };
  if (proof !== undefined) headers.dpop = proof;
  return post(g.mcpUrl, headers);
}

const metadataOf = (g) => `resource_metadata="${g.url}/.well-known/oauth-protected-resource/mcp"`;

/** The refusal's exact status and challenges, its body's error, and an upstream that saw no POST. */
async function assertRefused(g, what, sending, { status = 401, error, description, bearer = true }) {
  const before = upstream.posts;
  const a = await sending;
  assert.equal(a.status, status, `${what}: ${a.body}`);
  const expected = [`DPoP algs="${ALGS}", error="${error}", error_description="${description}", ${metadataOf(g)}`];
  if (bearer) expected.push(`Bearer ${metadataOf(g)}`);
  assert.deepEqual(a.challenges, expected, what);
  assert.equal(JSON.parse(a.body).error, error, what);
  assert.equal(upstream.posts, before, `${what}: reached the upstream`);
  return a;
}

before(async () => {
  as = await stack.authorizationServer({ dpop: true });
  const everything = await stack.serverEverything();
  upstream = await countingForwarder(everything);
  gate = await stack.gate({ upstream, issuer: as.issuer });
  required = await stack.gate({ upstream, issuer: as.issuer, env: { DPOP_REQUIRED: 'true' } });
  nonceGate = await stack.gate({
    upstream,
    issuer: as.issuer,
    env: { DPOP_NONCE: 'true', DPOP_NONCE_KEYS: b64url(NONCE_KEY) },
  });
});

after(async () => {
  await stack.stop();
  await upstream?.close();
});

test('the SDK client with a DPoP-bound token from oidc-provider lists and calls tools through the gate', async () => {
  const key = await DpopKey.create();
  const token = await boundToken(gate.mcpUrl, key);
  const fetchFn = dpopFetch(key, token);
  const transport = new StreamableHTTPClientTransport(new URL(gate.mcpUrl), { fetch: fetchFn });
  const client = new Client({ name: 'mcp-gate-e2e-dpop', version: '1.0.0' });
  const before = upstream.posts;
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'echo'), tools.map((t) => t.name).join(' '));
    const result = await client.callTool({ name: 'echo', arguments: { message: 'bound to my key' } });
    assert.match(JSON.stringify(result.content), /bound to my key/);
  } finally {
    await client.close();
  }
  assert.ok(fetchFn.calls.length >= 4, 'initialize, initialized, tools/list, tools/call');
  assert.ok(fetchFn.calls.every((c) => c.status < 400), JSON.stringify(fetchFn.calls));
  assert.ok(upstream.posts - before >= 4, 'the POSTs reached the upstream');
});

test('the gate advertises DPoP in its metadata', async () => {
  const doc = await (await fetch(`${gate.url}/.well-known/oauth-protected-resource/mcp`)).json();
  assert.deepEqual(doc.dpop_signing_alg_values_supported, ALGS.split(' '));
  assert.equal(doc.dpop_bound_access_tokens_required, undefined);
  const strict = await (await fetch(`${required.url}/.well-known/oauth-protected-resource/mcp`)).json();
  assert.equal(strict.dpop_bound_access_tokens_required, true);
});

test('a replayed proof is refused, and the first use was not', async () => {
  const key = await DpopKey.create();
  const token = await boundToken(gate.mcpUrl, key);
  const proof = await key.proof({ htu: gate.mcpUrl, token });
  const before = upstream.posts;
  assert.equal((await postDpop(gate, token, proof)).status, 200);
  assert.equal(upstream.posts, before + 1);
  await assertRefused(gate, 'replayed proof', postDpop(gate, token, proof), {
    error: 'invalid_dpop_proof',
    description: BAD_PROOF,
  });
});

test('every wrong proof is refused with invalid_dpop_proof and never reaches the upstream', async () => {
  const key = await DpopKey.create();
  const stranger = await DpopKey.create();
  const token = await boundToken(gate.mcpUrl, key);
  const htu = gate.mcpUrl;
  const claims = () => ({ jti: randomUUID(), htm: 'POST', htu, iat: now(), ath: ath(token) });
  const otherToken = await boundToken(gate.mcpUrl, key);
  const cases = [
    ['wrong htm', key.proof({ htu, token, claims: { htm: 'GET' } })],
    ['wrong htu', key.proof({ htu: `${gate.url}/other`, token })],
    ['stale iat', key.proof({ htu, token, claims: { iat: now() - 400 } })],
    ['future iat', key.proof({ htu, token, claims: { iat: now() + 400 } })],
    ['wrong ath (another token of the same key)', key.proof({ htu, token: otherToken })],
    ['proof key is not cnf.jkt', stranger.proof({ htu, token })],
    ['private key in jwk', key.proof({ htu, token, header: { jwk: key.privateJwk } })],
    ['alg none', handMadeProof({ typ: 'dpop+jwt', alg: 'none', jwk: key.jwk }, claims(), () => '')],
    [
      'alg HS256',
      handMadeProof({ typ: 'dpop+jwt', alg: 'HS256', jwk: key.jwk }, claims(), (input) =>
        createHmac('sha256', key.jkt).update(input).digest('base64url'),
      ),
    ],
    ['no proof', undefined],
  ];
  assert.ok(key.privateJwk.d, 'the private JWK carries d');
  for (const [what, proof] of cases) {
    await assertRefused(gate, what, postDpop(gate, token, await proof), {
      error: 'invalid_dpop_proof',
      description: BAD_PROOF,
    });
  }
  const two = [await key.proof({ htu, token }), await key.proof({ htu, token })];
  await assertRefused(gate, 'two DPoP headers', postDpop(gate, token, two), {
    status: 400,
    error: 'invalid_request',
    description: 'The request carries more than one DPoP proof',
  });
  // The token itself is fine: with a correct proof it passes.
  assert.equal((await postDpop(gate, token, await key.proof({ htu, token }))).status, 200);
});

test('a bound token is refused as Bearer, with or without a proof beside it', async () => {
  const key = await DpopKey.create();
  const token = await boundToken(gate.mcpUrl, key);
  const refusal = {
    error: 'invalid_token',
    description: 'The access token is DPoP-bound: send it with the DPoP scheme and a proof',
  };
  await assertRefused(gate, 'bound token as Bearer', post(gate.mcpUrl, { authorization: `Bearer ${token}` }), refusal);
  const proof = await key.proof({ htu: gate.mcpUrl, token });
  await assertRefused(
    gate,
    'bound token as Bearer with a proof',
    post(gate.mcpUrl, { authorization: `Bearer ${token}`, dpop: proof }),
    refusal,
  );
});

test('an unbound token from the same AS is still a Bearer token, but never a DPoP one nor beside a proof', async () => {
  const plain = await clientCredentialsToken(as, gate.mcpUrl);
  assert.equal(decodeJwt(plain).cnf, undefined, 'no proof at the token endpoint, no binding');
  const before = upstream.posts;
  assert.equal((await post(gate.mcpUrl, { authorization: `Bearer ${plain}` })).status, 200);
  assert.equal(upstream.posts, before + 1);
  const key = await DpopKey.create();
  await assertRefused(gate, 'unbound token with the DPoP scheme', postDpop(gate, plain, await key.proof({ htu: gate.mcpUrl, token: plain })), {
    error: 'invalid_token',
    description: 'The access token is not bound to a DPoP key',
  });
  const proof = await key.proof({ htu: gate.mcpUrl, token: plain });
  await assertRefused(gate, 'proof beside an unbound Bearer token', post(gate.mcpUrl, { authorization: `Bearer ${plain}`, dpop: proof }), {
    status: 400,
    error: 'invalid_request',
    description: 'A DPoP proof must be sent with the DPoP authorization scheme',
  });
});

test('DPOP_REQUIRED refuses a plain Bearer token from the AS and accepts its bound token', async () => {
  const plain = await clientCredentialsToken(as, required.mcpUrl);
  await assertRefused(required, 'plain Bearer token with DPOP_REQUIRED', post(required.mcpUrl, { authorization: `Bearer ${plain}` }), {
    error: 'invalid_token',
    description: 'This resource accepts DPoP-bound access tokens only',
    bearer: false,
  });
  const key = await DpopKey.create();
  const token = await boundToken(required.mcpUrl, key);
  const before = upstream.posts;
  assert.equal((await postDpop(required, token, await key.proof({ htu: required.mcpUrl, token }))).status, 200);
  assert.equal(upstream.posts, before + 1);
});

/** A nonce in the gate's format (AES-256-GCM over the issue time, see src/auth/dpop_nonce.rs). */
function sealNonce(key, issuedAt) {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from('mcp-gate dpop-nonce v1'));
  const time = Buffer.alloc(8);
  time.writeBigUInt64BE(BigInt(issuedAt));
  return b64url(Buffer.concat([iv, cipher.update(time), cipher.final(), cipher.getAuthTag()]));
}

test('DPOP_NONCE: the SDK client follows use_dpop_nonce, and a missing, stale, forged or foreign nonce is refused', async () => {
  const key = await DpopKey.create();
  const token = await boundToken(nonceGate.mcpUrl, key);
  const htu = nonceGate.mcpUrl;
  const useNonce = { error: 'use_dpop_nonce', description: 'Resend the DPoP proof with the nonce in DPoP-Nonce' };

  const missing = await assertRefused(nonceGate, 'no nonce', postDpop(nonceGate, token, await key.proof({ htu, token })), useNonce);
  assert.ok(missing.nonce, 'a fresh nonce comes with the refusal');
  // The gate's own nonce, sealed in this test with the configured key, proves the format is the one documented.
  const ours = await postDpop(nonceGate, token, await key.proof({ htu, token, nonce: sealNonce(NONCE_KEY, now()) }));
  assert.equal(ours.status, 200, ours.body);
  const passed = await postDpop(nonceGate, token, await key.proof({ htu, token, nonce: missing.nonce }));
  assert.equal(passed.status, 200, passed.body);
  assert.ok(passed.nonce && passed.nonce !== missing.nonce, 'a successful answer carries the next nonce');

  const forged = [...missing.nonce];
  forged[20] = forged[20] === 'A' ? 'B' : 'A';
  const cases = [
    ['stale nonce', sealNonce(NONCE_KEY, now() - 600)],
    ['forged nonce', forged.join('')],
    ['nonce from another key', sealNonce(randomBytes(32), now())],
  ];
  for (const [what, nonce] of cases) {
    const a = await assertRefused(nonceGate, what, postDpop(nonceGate, token, await key.proof({ htu, token, nonce })), useNonce);
    assert.ok(a.nonce, `${what}: a fresh nonce comes with the refusal`);
  }

  // The SDK client through the nonce gate: its fetch learns the nonce from the first refusal.
  const fetchFn = dpopFetch(key, token);
  const client = new Client({ name: 'mcp-gate-e2e-dpop-nonce', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(nonceGate.mcpUrl), { fetch: fetchFn }));
  try {
    const result = await client.callTool({ name: 'echo', arguments: { message: 'with a nonce' } });
    assert.match(JSON.stringify(result.content), /with a nonce/);
  } finally {
    await client.close();
  }
  assert.equal(fetchFn.calls[0].status, 401, 'the first request had no nonce');
  assert.match(fetchFn.calls[0].wwwAuthenticate, /error="use_dpop_nonce"/);
  assert.ok(fetchFn.calls.slice(1).every((c) => c.status < 400), JSON.stringify(fetchFn.calls));
});
