// The real components of one scenario: authorization server, upstream MCP servers and the gate,
// each on a free 127.0.0.1 port, logging to e2e/.logs/<scenario>/<name>.log, stopped by PID.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { E2E_DIR, LOG_ROOT, freePort, start, stopAll, waitForHttp } from './processes.mjs';

export const GATE_BIN = process.env.MCP_GATE_BIN ?? join(E2E_DIR, '..', 'target', 'release', 'mcp-gate');
const PYTHON = process.env.E2E_PYTHON ?? join(E2E_DIR, '.venv', 'bin', 'python');
const EVERYTHING = join(E2E_DIR, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');

export class Stack {
  /** `scenario` names the log folder; it is emptied first. */
  constructor(scenario) {
    this.logDir = join(LOG_ROOT, scenario);
    rmSync(this.logDir, { recursive: true, force: true });
    this.procs = [];
    this.names = new Map();
  }

  _start(name, command, args, options) {
    const count = (this.names.get(name) ?? 0) + 1;
    this.names.set(name, count);
    const proc = start(count === 1 ? name : `${name}-${count}`, command, args, { logDir: this.logDir, ...options });
    this.procs.push(proc);
    return proc;
  }

  /** oidc-provider (e2e/as/server.mjs). Pass `port` to come back on the same issuer after stop(). */
  async authorizationServer({ port, alg = 'RS256', ttl = 300, jwksFile } = {}) {
    port ??= await freePort();
    const env = { AS_PORT: String(port), AS_ALG: alg, AS_TTL: String(ttl) };
    if (jwksFile) env.AS_JWKS_FILE = jwksFile;
    const proc = this._start('as', process.execPath, [join(E2E_DIR, 'as', 'server.mjs')], { env });
    const [, issuer, kid] = await proc.waitForOutput(/AS ready (\S+) kid=(\S+)/);
    return { issuer, kid, port, proc, tokenUrl: `${issuer}/token` };
  }

  /** @modelcontextprotocol/server-everything in streamableHttp mode, forced onto 127.0.0.1. */
  async serverEverything() {
    const port = await freePort();
    const proc = this._start(
      'server-everything',
      process.execPath,
      ['-r', join(E2E_DIR, 'upstream', 'force-loopback.cjs'), EVERYTHING, 'streamableHttp'],
      { env: { PORT: String(port) } },
    );
    await proc.waitForOutput(/listening on port/);
    return { url: `http://127.0.0.1:${port}`, mcpUrl: `http://127.0.0.1:${port}/mcp`, port, proc };
  }

  /** The Python SDK server (e2e/py/server.py): accepts only Host 127.0.0.1:<its port>. */
  async pythonServer() {
    const port = await freePort();
    const proc = this._start('python-upstream', PYTHON, [join(E2E_DIR, 'py', 'server.py'), String(port)]);
    await proc.waitForOutput(/Uvicorn running on/, 30000);
    return { url: `http://127.0.0.1:${port}`, mcpUrl: `http://127.0.0.1:${port}/mcp`, port, proc };
  }

  /**
   * The gate in front of `upstream` for `issuer`, ready (/readyz 200) when this resolves.
   * `env` adds or overrides variables (REQUIRED_SCOPES, CORS_ALLOWED_ORIGINS, ...).
   */
  async gate({ upstream, issuer, env = {}, port } = {}) {
    port ??= await freePort();
    const base = `http://127.0.0.1:${port}`;
    const proc = this._start('gate', GATE_BIN, [], {
      env: {
        LISTEN_ADDR: `127.0.0.1:${port}`,
        UPSTREAM_URL: upstream.url,
        RESOURCE_URI: `${base}/mcp`,
        AUTHORIZATION_SERVER: issuer,
        JWKS_MIN_REFRESH_INTERVAL: '1s',
        LOG_LEVEL: 'debug',
        ...env,
      },
    });
    await waitForHttp(`${base}/readyz`, { proc });
    return { url: base, mcpUrl: `${base}/mcp`, port, proc };
  }

  /** Any other long-running command that belongs to this scenario. */
  process(name, command, args, options) {
    return this._start(name, command, args, options);
  }

  async stop() {
    await stopAll(this.procs);
  }
}

/** A client_credentials access token for `resource` from the pre-registered client mcp-cc. */
export async function clientCredentialsToken(as, resource, { scope = 'mcp:tools', clientId = 'mcp-cc' } = {}) {
  const res = await fetch(as.tokenUrl, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${clientId}:mcp-cc-secret`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`token endpoint said ${res.status}: ${JSON.stringify(body)}`);
  return body.access_token;
}
