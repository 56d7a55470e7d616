// Scenario 8: a browser client on another origin calls the gate with fetch (MCP Inspector and web
// hosts do this). CORS_ALLOWED_ORIGINS lists the page's origin. The upstream is the Python server,
// which sends no CORS headers of its own, so whatever the browser accepts comes from the gate.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, startPageServer } from '../lib/browser.mjs';
import { freePort } from '../lib/processes.mjs';
import { Stack, clientCredentialsToken } from '../lib/stack.mjs';

const stack = new Stack('08-browser-cors');
let gate, token, page, otherPage, browser, pageServer, otherServer;

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'e2e-browser', version: '1' } },
};

before(async () => {
  pageServer = await startPageServer(await freePort());
  otherServer = await startPageServer(await freePort());
  const as = await stack.authorizationServer();
  const upstream = await stack.pythonServer();
  gate = await stack.gate({ upstream, issuer: as.issuer, env: { CORS_ALLOWED_ORIGINS: pageServer.origin } });
  token = await clientCredentialsToken(as, gate.mcpUrl);
  browser = await launchBrowser();
  page = await browser.context.newPage();
  await page.goto(`${pageServer.origin}/`);
  otherPage = await browser.context.newPage();
  await otherPage.goto(`${otherServer.origin}/`);
});

after(async () => {
  await browser?.close();
  await pageServer?.close();
  await otherServer?.close();
  await stack.stop();
});

/** fetch() inside the page; returns status and the response headers JS is allowed to read, or the error. */
function fetchInPage(target, url, init) {
  return target.evaluate(
    async ({ url, init }) => {
      try {
        const res = await fetch(url, init);
        const body = await res.text();
        return {
          status: res.status,
          wwwAuthenticate: res.headers.get('www-authenticate'),
          sessionId: res.headers.get('mcp-session-id'),
          body,
        };
      } catch (err) {
        return { error: String(err) };
      }
    },
    { url, init },
  );
}

const jsonHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

test('a preflight from an allowed origin gets 204 without auth, allowing the MCP request headers', async () => {
  const res = await fetch(gate.mcpUrl, {
    method: 'OPTIONS',
    headers: {
      origin: pageServer.origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,content-type,mcp-protocol-version,mcp-session-id,last-event-id',
    },
  });
  assert.equal(res.status, 204);
  assert.equal(res.headers.get('access-control-allow-origin'), pageServer.origin);
  assert.match(res.headers.get('access-control-allow-methods') ?? '', /POST/);
  const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/\s*,\s*/);
  for (const header of ['authorization', 'content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id']) {
    assert.ok(allowed.includes(header), `${header} not in Access-Control-Allow-Headers: ${allowed}`);
  }
});

test('in the browser, JS can read WWW-Authenticate on the 401', async () => {
  const result = await fetchInPage(page, gate.mcpUrl, { method: 'POST', headers: jsonHeaders, body: JSON.stringify(INITIALIZE) });
  assert.equal(result.error, undefined, result.error);
  assert.equal(result.status, 401);
  assert.match(result.wwwAuthenticate ?? 'null', /resource_metadata="/);
});

test('in the browser, JS can read Mcp-Session-Id on success and use it for the next requests', async () => {
  const authHeaders = { ...jsonHeaders, authorization: `Bearer ${token}` };
  const init = await fetchInPage(page, gate.mcpUrl, { method: 'POST', headers: authHeaders, body: JSON.stringify(INITIALIZE) });
  assert.equal(init.error, undefined, init.error);
  assert.equal(init.status, 200);
  assert.ok(init.sessionId, 'Mcp-Session-Id not readable by JS');
  const sessionHeaders = { ...authHeaders, 'mcp-session-id': init.sessionId, 'mcp-protocol-version': '2025-06-18' };
  const initialized = await fetchInPage(page, gate.mcpUrl, {
    method: 'POST',
    headers: sessionHeaders,
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  assert.equal(initialized.status, 202, initialized.error);
  const list = await fetchInPage(page, gate.mcpUrl, {
    method: 'POST',
    headers: sessionHeaders,
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
  });
  assert.equal(list.status, 200, list.error);
  assert.match(list.body, /"name":"add"/);
});

test('a request whose Origin is not allowed gets 403', async () => {
  const res = await fetch(gate.mcpUrl, {
    method: 'POST',
    headers: { ...jsonHeaders, origin: otherServer.origin, authorization: `Bearer ${token}` },
    body: JSON.stringify(INITIALIZE),
  });
  await res.body?.cancel();
  assert.equal(res.status, 403);
  assert.equal(res.headers.get('access-control-allow-origin'), null);
});

test('in the browser, a page from a non-allowed origin cannot call the gate', async () => {
  const result = await fetchInPage(otherPage, gate.mcpUrl, {
    method: 'POST',
    headers: { ...jsonHeaders, authorization: `Bearer ${token}` },
    body: JSON.stringify(INITIALIZE),
  });
  assert.match(result.error ?? `status ${result.status}`, /TypeError/);
});
