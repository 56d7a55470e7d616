// The real components of one scenario: authorization server, upstream MCP servers and the gate,
// each on a free 127.0.0.1 port, logging to e2e/.logs/<scenario>/<name>.log, stopped by PID.
import { execFile } from 'node:child_process';
import { appendFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { E2E_DIR, LOG_ROOT, freePort, start, stopAll, waitForHttp } from './processes.mjs';

/** How a child says its port was taken (Node, uvicorn, the gate). */
const PORT_IN_USE = /EADDRINUSE|address already in use|already in use/i;
const START_ATTEMPTS = 3;

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

  /**
   * Runs `launch(port)` until the component it starts is ready. A port from freePort() was free a
   * moment ago, but another socket can take it before the child binds it, and a cold start on a
   * busy 2-core machine can miss its deadline; both are the harness's problem, not the component's,
   * so a failed start is stopped and retried, on a fresh port unless the caller fixed one. With
   * `onlyPortInUse` (the gate: its own start-up failures are findings) only a taken port is retried.
   * Every attempt's log is kept (name.log, name-2.log, ...) and each retry is written to retries.log.
   */
  async _startReady(name, { port, onlyPortInUse = false }, launch) {
    for (let attempt = 1; ; attempt++) {
      const started = this.procs.length;
      const chosen = port ?? (await freePort());
      try {
        return await launch(chosen);
      } catch (err) {
        await stopAll(this.procs.slice(started));
        const retry = attempt < START_ATTEMPTS && (!onlyPortInUse || PORT_IN_USE.test(err.message));
        if (!retry) throw err;
        const line = `${name} did not start on port ${chosen} (attempt ${attempt} of ${START_ATTEMPTS}): ${err.message.split('\n').slice(0, 3).join(' | ')}`;
        appendFileSync(join(this.logDir, 'retries.log'), `${line}\n`);
        console.log(`# e2e: ${line}; retrying`);
      }
    }
  }

  /**
   * oidc-provider (e2e/as/server.mjs). Pass `port` to come back on the same issuer after stop();
   * `dpop: true` keeps its DPoP feature on (a proof at the token endpoint gets a DPoP-bound token).
   */
  async authorizationServer({ port, alg = 'RS256', ttl = 300, jwksFile, dpop = false } = {}) {
    return this._startReady('as', { port }, async (chosen) => {
      const env = { AS_PORT: String(chosen), AS_ALG: alg, AS_TTL: String(ttl) };
      if (jwksFile) env.AS_JWKS_FILE = jwksFile;
      if (dpop) env.AS_DPOP = 'true';
      const proc = this._start('as', process.execPath, [join(E2E_DIR, 'as', 'server.mjs')], { env });
      const [, issuer, kid] = await proc.waitForOutput(/AS ready (\S+) kid=(\S+)/, 20000);
      return { issuer, kid, port: chosen, proc, tokenUrl: `${issuer}/token` };
    });
  }

  /** @modelcontextprotocol/server-everything in streamableHttp mode, forced onto 127.0.0.1. */
  async serverEverything() {
    return this._startReady('server-everything', {}, async (port) => {
      const proc = this._start(
        'server-everything',
        process.execPath,
        ['-r', join(E2E_DIR, 'upstream', 'force-loopback.cjs'), EVERYTHING, 'streamableHttp'],
        { env: { PORT: String(port) } },
      );
      await proc.waitForOutput(/listening on port/, 20000);
      return { url: `http://127.0.0.1:${port}`, mcpUrl: `http://127.0.0.1:${port}/mcp`, port, proc };
    });
  }

  /** e2e/upstream/recording.mjs: answers everything 200 and lists what reached it at /__seen. */
  async recordingUpstream() {
    return this._startReady('recording-upstream', {}, async (port) => {
      const proc = this._start('recording-upstream', process.execPath, [join(E2E_DIR, 'upstream', 'recording.mjs'), String(port)]);
      await proc.waitForOutput(/recording upstream listening on port/, 20000);
      const url = `http://127.0.0.1:${port}`;
      const seen = async () => (await fetch(`${url}/__seen`)).json();
      return { url, mcpUrl: `${url}/mcp`, port, proc, seen };
    });
  }

  /**
   * A Python SDK server (e2e/py/server.py unless `script` names another, e.g. notes_server.py;
   * `args` follow the port): accepts only Host 127.0.0.1:<its port>.
   */
  async pythonServer({ script = 'server.py', args = [] } = {}) {
    return this._startReady('python-upstream', {}, async (port) => {
      const proc = this._start('python-upstream', PYTHON, [join(E2E_DIR, 'py', script), String(port), ...args]);
      await proc.waitForOutput(/Uvicorn running on/, 30000);
      return { url: `http://127.0.0.1:${port}`, mcpUrl: `http://127.0.0.1:${port}/mcp`, port, proc };
    });
  }

  /**
   * The gate in front of `upstream` for `issuer`, ready (/readyz 200) when this resolves.
   * `env` adds or overrides variables (REQUIRED_SCOPES, CORS_ALLOWED_ORIGINS, ...).
   */
  async gate({ upstream, issuer, env = {}, port } = {}) {
    return this._startReady('gate', { port, onlyPortInUse: true }, async (chosen) => {
      const base = `http://127.0.0.1:${chosen}`;
      const proc = this._start('gate', GATE_BIN, [], {
        env: {
          LISTEN_ADDR: `127.0.0.1:${chosen}`,
          UPSTREAM_URL: upstream.url,
          RESOURCE_URI: `${base}/mcp`,
          AUTHORIZATION_SERVER: issuer,
          JWKS_MIN_REFRESH_INTERVAL: '1s',
          LOG_LEVEL: 'debug',
          ...env,
        },
      });
      await waitForHttp(`${base}/readyz`, { proc });
      return { url: base, mcpUrl: `${base}/mcp`, port: chosen, proc };
    });
  }

  /** Any other long-running command that belongs to this scenario. */
  process(name, command, args, options) {
    return this._start(name, command, args, options);
  }

  async stop() {
    await stopAll(this.procs);
  }
}

/**
 * Sends an MCP `initialize` (which the upstream answers without a session) to `mcpUrl` with `token`
 * as the bearer; resolves { status, wwwAuthenticate }.
 */
export async function initializeWith(mcpUrl, token, clientName = 'e2e') {
  const res = await fetch(mcpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: clientName, version: '1' } },
    }),
  });
  await res.body?.cancel();
  return { status: res.status, wwwAuthenticate: res.headers.get('www-authenticate') ?? '' };
}

/**
 * Runs the Python SDK client (e2e/py/client.py) against `url` with `token` and the list of
 * `calls`; resolves its printed JSON array (one { result } or { error } per call).
 */
export async function pythonClient(url, token, calls) {
  const { stdout } = await promisify(execFile)(PYTHON, [join(E2E_DIR, 'py', 'client.py'), url, JSON.stringify(calls)], {
    env: { ...process.env, MCP_TOKEN: token },
    timeout: 60000,
  });
  return JSON.parse(stdout);
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
