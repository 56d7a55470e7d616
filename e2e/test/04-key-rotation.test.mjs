// Scenario 4: the AS rotates its signing key by restarting with a new one (same issuer and port).
// The gate must pick the new key up by itself (unknown kid → JWKS refetch, at most once per
// JWKS_MIN_REFRESH_INTERVAL = 1s here) and stop accepting tokens signed by the removed key.
// Each rotation also changes the algorithm, so RS256, PS256, ES256 and EdDSA are all exercised.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeJwt } from '../lib/oauth-client.mjs';
import { sleep } from '../lib/processes.mjs';
import { Stack, clientCredentialsToken, initializeWith } from '../lib/stack.mjs';

const stack = new Stack('04-key-rotation');
let as, gate;
const tokens = [];

before(async () => {
  as = await stack.authorizationServer({ alg: 'RS256' });
  const upstream = await stack.serverEverything();
  gate = await stack.gate({ upstream, issuer: as.issuer, env: { JWKS_MIN_REFRESH_INTERVAL: '1s' } });
});

after(() => stack.stop());

/** POSTs an MCP initialize with `token`; returns the status and WWW-Authenticate. */
const initialize = (token) => initializeWith(gate.mcpUrl, token, 'e2e-rotation');

/** Retries while the gate may still be inside its minimum refetch interval. */
async function eventuallyAccepted(token, withinMs = 4000) {
  const deadline = Date.now() + withinMs;
  let last;
  do {
    last = await initialize(token);
    if (last.status === 200) return last;
    await sleep(250);
  } while (Date.now() < deadline);
  return last;
}

async function rotateTo(alg) {
  await as.proc.stop();
  as = await stack.authorizationServer({ port: as.port, alg });
}

test('a token from the first key (RS256) is accepted', async () => {
  tokens.push(await clientCredentialsToken(as, gate.mcpUrl));
  assert.equal((await initialize(tokens[0])).status, 200);
});

for (const alg of ['PS256', 'ES256', 'EdDSA']) {
  test(`after the AS restarts with a new ${alg} key, its tokens are accepted without restarting the gate`, async () => {
    const previousKid = decodeJwt(tokens.at(-1)).header.kid;
    await rotateTo(alg);
    const token = await clientCredentialsToken(as, gate.mcpUrl);
    const { header } = decodeJwt(token);
    assert.equal(header.alg, alg);
    assert.notEqual(header.kid, previousKid);
    tokens.push(token);
    const result = await eventuallyAccepted(token);
    assert.equal(result.status, 200, `new-key token refused: ${result.wwwAuthenticate}`);
    assert.equal(gate.proc.child.exitCode, null, 'the gate kept running');
  });

  test(`after the rotation to ${alg}, a token signed by the removed key is refused with 401 invalid_token`, async () => {
    const result = await initialize(tokens.at(-2));
    assert.equal(result.status, 401);
    assert.match(result.wwwAuthenticate ?? '', /error="invalid_token"/);
  });
}
