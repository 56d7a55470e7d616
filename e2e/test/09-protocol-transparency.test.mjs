// Scenario 9: the official MCP conformance suite's server scenarios give the same per-check
// results directly against the upstream and through the gate with a valid token. The suite sends
// no Authorization, so a test-only forwarder adds one in front of the gate (no bypass in the gate).
// The suite needs Node >= 22: it runs on the `node` package installed in e2e/node22.
//
// One scenario may differ, in one direction only: dns-rebinding-protection sends a foreign
// Host/Origin (evil.example.com) and then its own origin. server-everything accepts both (it has
// no such protection, so that check fails directly); the gate refuses any Origin outside
// CORS_ALLOWED_ORIGINS with 403 (MCP transports: "present and invalid → 403"). Through the gate,
// both of its checks must pass; the suite's own origin (the forwarder's) is the allowed one.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startBearerForwarder } from '../lib/bearer-forwarder.mjs';
import { E2E_DIR, freePort, within } from '../lib/processes.mjs';
import { Stack, clientCredentialsToken } from '../lib/stack.mjs';

const NODE22 = join(E2E_DIR, 'node22', 'node_modules', 'node', 'bin', 'node');
const CONFORMANCE = join(E2E_DIR, 'node22', 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');

const stack = new Stack('09-protocol-transparency');
let upstream, forwarder;
const results = {};
const ORIGIN_CHECKED_BY_THE_GATE = 'dns-rebinding-protection';

/** Runs the server suite against `url`; returns { scenario: { checkId: [statuses] } }. */
async function conformance(name, url) {
  const outDir = join(stack.logDir, `${name}-results`);
  rmSync(outDir, { recursive: true, force: true });
  const proc = stack.process(name, NODE22, [CONFORMANCE, 'server', '--url', url, '-o', outDir]);
  const status = await within(proc.exited, 120000);
  if (!status) throw new Error(`${name} did not finish within 120 s`);
  assert.match(proc.output(), /=== SUMMARY ===/, `${name} did not complete:\n${proc.output().slice(-2000)}`);
  const byScenario = {};
  for (const dir of readdirSync(outDir)) {
    const scenario = dir.replace(/^server-/, '').replace(/-\d{4}-\d\d-\d\dT[\d-]+Z$/, '');
    const checks = JSON.parse(readFileSync(join(outDir, dir, 'checks.json'), 'utf8'));
    const verdicts = {};
    // INFO entries log traffic (URLs, ports, event counts) and are not verdicts.
    for (const check of checks.filter((c) => c.status !== 'INFO')) {
      (verdicts[check.id] ??= []).push(check.status);
    }
    byScenario[scenario] = verdicts;
  }
  return byScenario;
}

before(async () => {
  const as = await stack.authorizationServer({ ttl: 600 });
  upstream = await stack.serverEverything();
  const forwarderPort = await freePort();
  const gate = await stack.gate({
    upstream,
    issuer: as.issuer,
    env: { CORS_ALLOWED_ORIGINS: `http://127.0.0.1:${forwarderPort}` },
  });
  const token = await clientCredentialsToken(as, gate.mcpUrl);
  forwarder = await startBearerForwarder({ port: forwarderPort, target: gate.url, token });
});

after(async () => {
  await forwarder?.close();
  await stack.stop();
});

test('the conformance suite runs its server scenarios directly against the upstream', async () => {
  results.direct = await conformance('conformance-direct', upstream.mcpUrl);
  assert.ok(Object.keys(results.direct).length >= 20, `only ${Object.keys(results.direct).length} scenarios ran`);
});

test('the conformance suite runs its server scenarios through the gate with a valid token', async () => {
  results.gated = await conformance('conformance-gated', `${forwarder.url}/mcp`);
  assert.ok(Object.keys(results.gated).length >= 20, `only ${Object.keys(results.gated).length} scenarios ran`);
});

test('every scenario has identical check results with and without the gate', () => {
  assert.ok(results.direct && results.gated, 'both runs are needed');
  assert.deepEqual(Object.keys(results.gated).sort(), Object.keys(results.direct).sort());
  const differences = Object.keys(results.direct)
    .filter((scenario) => scenario !== ORIGIN_CHECKED_BY_THE_GATE)
    .filter((scenario) => JSON.stringify(results.direct[scenario]) !== JSON.stringify(results.gated[scenario]))
    .map((scenario) => `${scenario}: direct ${JSON.stringify(results.direct[scenario])} vs gated ${JSON.stringify(results.gated[scenario])}`);
  assert.deepEqual(differences, []);
});

test('through the gate, a foreign Origin is refused and the allowed origin is accepted (dns-rebinding-protection)', () => {
  assert.ok(results.gated, 'the gated run is needed');
  const verdicts = results.gated[ORIGIN_CHECKED_BY_THE_GATE];
  assert.deepEqual(verdicts, { 'localhost-host-rebinding-rejected': ['SUCCESS'], 'localhost-host-valid-accepted': ['SUCCESS'] });
});
