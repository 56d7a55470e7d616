// Scenario 3: mcp-remote (the stdio↔HTTP bridge many desktop clients use) reaches tools/list
// through the gate, both by its own DCR + auth-code login and with client_credentials.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { E2E_DIR, within } from '../lib/processes.mjs';
import { Stack } from '../lib/stack.mjs';

const MCP_REMOTE_CLIENT = join(E2E_DIR, 'node_modules', 'mcp-remote', 'dist', 'client.js');
const FAKE_BROWSER = join(E2E_DIR, 'lib', 'fake-browser.mjs');

const stack = new Stack('03-mcp-remote');
let gate;

before(async () => {
  const as = await stack.authorizationServer();
  const upstream = await stack.serverEverything();
  gate = await stack.gate({ upstream, issuer: as.issuer });
});

after(() => stack.stop());

/** Runs mcp-remote-client against the gate in a fresh HOME; its stdin stays open (it quits on EOF). */
async function mcpRemoteClient(name, extraArgs = [], home = mkdtempSync(join(tmpdir(), 'mcp-remote-'))) {
  const proc = stack.process(name, process.execPath, [MCP_REMOTE_CLIENT, gate.mcpUrl, ...extraArgs], {
    stdin: 'pipe',
    cwd: home,
    env: { HOME: home, MCP_REMOTE_CONFIG_DIR: join(home, 'auth'), BROWSER: FAKE_BROWSER },
  });
  const outcome = await Promise.race([
    proc.waitForOutput(/Exiting OK|Fatal error/, 60000),
    proc.exited.then((status) => [`exited ${JSON.stringify(status)}`]),
  ]);
  const status = await within(proc.exited, 5000);
  await proc.stop();
  rmSync(home, { recursive: true, force: true });
  return { outcome: outcome[0], status, output: proc.output() };
}

test('mcp-remote logs in by itself (DCR + auth code + PKCE) and lists the tools through the gate', async () => {
  const { outcome, status, output } = await mcpRemoteClient('mcp-remote-authcode');
  assert.equal(outcome, 'Exiting OK', output.slice(-3000));
  assert.match(output, /"name": "trigger-long-running-operation"/);
  assert.equal(status?.code, 0);
});

test('mcp-remote with client_credentials lists the tools through the gate', async () => {
  const home = mkdtempSync(join(tmpdir(), 'mcp-remote-'));
  const clientInfo = join(home, 'cc.json');
  writeFileSync(clientInfo, JSON.stringify({ client_id: 'mcp-cc', client_secret: 'mcp-cc-secret' }));
  const { outcome, output } = await mcpRemoteClient(
    'mcp-remote-cc',
    ['--client-credentials', '--static-oauth-client-info', `@${clientInfo}`],
    home,
  );
  assert.equal(outcome, 'Exiting OK', output.slice(-3000));
  assert.match(output, /"name": "echo"/);
});
