// `mcp-gate check` against the real stack (oidc-provider, server-everything, the gate): a healthy
// deployment passes, and each deliberate misconfiguration is named with a hint. The token given to
// --token never appears in the output.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { GATE_BIN, Stack, clientCredentialsToken } from '../lib/stack.mjs';
import { freePort } from '../lib/processes.mjs';

const stack = new Stack('10-check');
let as, healthy, wrongResource, wrongIssuer;

before(async () => {
  as = await stack.authorizationServer();
  const upstream = await stack.serverEverything();
  healthy = await stack.gate({ upstream, issuer: as.issuer });
  // Users are given http://127.0.0.1:PORT/mcp, but the gate publishes localhost as the resource.
  const port = await freePort();
  wrongResource = await stack.gate({
    upstream,
    issuer: as.issuer,
    port,
    env: { RESOURCE_URI: `http://localhost:${port}/mcp`, EXPECTED_AUDIENCE: `http://localhost:${port}/mcp` },
  });
  // The metadata names the issuer with a trailing slash the AS does not write (keys come from JWKS_URI,
  // so the gate itself still starts).
  wrongIssuer = await stack.gate({
    upstream,
    issuer: `${as.issuer}/`,
    env: { JWKS_URI: `${as.issuer}/jwks` },
  });
});

after(() => stack.stop());

/** Runs `mcp-gate check URL --json [args]`; resolves { code, checks, output }. */
function check(url, args = []) {
  return new Promise((resolve) => {
    execFile(GATE_BIN, ['check', url, '--json', ...args], { timeout: 30000 }, (error, stdout, stderr) => {
      const code = error ? error.code : 0;
      resolve({ code, checks: JSON.parse(stdout), output: stdout + stderr });
    });
  });
}

const failures = (checks) => checks.filter((c) => c.status === 'fail');

test('a healthy deployment passes every check (loopback http is only a warning)', async () => {
  const { code, checks } = await check(healthy.mcpUrl);
  assert.deepEqual(failures(checks), []);
  assert.equal(code, 0);
  assert.ok(checks.some((c) => c.status === 'warn'), 'plain http on loopback is flagged');
});

test('a valid token passes and a token for another resource is refused for its audience, unprinted', async () => {
  const good = await clientCredentialsToken(as, healthy.mcpUrl);
  const ok = await check(healthy.mcpUrl, ['--token', good]);
  assert.deepEqual(failures(ok.checks), []);
  assert.ok(!ok.output.includes(good), 'the token is never printed');

  const other = await clientCredentialsToken(as, wrongResource.mcpUrl);
  const bad = await check(healthy.mcpUrl, ['--token', other]);
  assert.equal(bad.code, 1);
  const [failure] = failures(bad.checks);
  assert.match(failure.message, /aud/i);
  assert.ok(failure.hint, 'a failed check carries a hint');
  assert.ok(!bad.output.includes(other), 'the token is never printed');
});

test('metadata whose resource is not the URL the client used is named, with the difference', async () => {
  const url = `http://127.0.0.1:${wrongResource.port}/mcp`;
  const { code, checks } = await check(url);
  assert.equal(code, 1);
  const failed = failures(checks);
  assert.ok(failed.some((c) => /resource/.test(c.message) && /localhost/.test(c.message) && c.hint), JSON.stringify(failed));
});

test('an authorization_servers entry that differs from the AS issuer is named', async () => {
  const { code, checks } = await check(wrongIssuer.mcpUrl);
  assert.equal(code, 1);
  const failed = failures(checks);
  assert.ok(failed.some((c) => /issuer/i.test(c.message) && c.hint), JSON.stringify(failed));
});
