// The Node peer: what an MCP server built on the TypeScript SDK does in front of its handler —
// the SDK's requireBearerAuth middleware with a jose JWKS verifier — followed by a plain streaming
// proxy (node:http, keep-alive agent) instead of the handler.
//
// env: PORT, ISSUER (JWKS found through its RFC 8414 metadata), AUDIENCE, UPSTREAM (http://host:port),
//      SSE_UPSTREAM (for /sse), RESOURCE_METADATA_URL (optional, for the challenge)
import http from 'node:http';
import express from 'express';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';

const { PORT, ISSUER, AUDIENCE, UPSTREAM, SSE_UPSTREAM } = process.env;
const meta = await (await fetch(`${ISSUER}/.well-known/oauth-authorization-server`)).json();
if (meta.issuer !== ISSUER) throw new Error(`metadata issuer ${meta.issuer} != ${ISSUER}`);
const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));

const verifier = {
  async verifyAccessToken(token) {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'], typ: 'at+jwt',
      }));
    } catch (e) {
      throw new InvalidTokenError(e.code ?? 'invalid token');
    }
    return {
      token,
      clientId: payload.client_id ?? payload.sub,
      scopes: typeof payload.scope === 'string' ? payload.scope.split(' ') : [],
      expiresAt: payload.exp,
      extra: { sub: payload.sub },
    };
  },
};

const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 1024 });
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host', 'authorization']);

function proxyTo(base) {
  const target = new URL(base);
  return (req, res) => {
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k)) headers[k] = v;
    const up = http.request({
      host: target.hostname, port: target.port, method: req.method, path: req.originalUrl, headers, agent,
    }, (ures) => {
      const out = {};
      for (const [k, v] of Object.entries(ures.headers)) if (!HOP.has(k)) out[k] = v;
      res.writeHead(ures.statusCode, out);
      res.flushHeaders();
      ures.pipe(res);
    });
    up.on('error', () => { if (!res.headersSent) res.writeHead(502).end(); else res.destroy(); });
    res.on('close', () => { if (!res.writableFinished) up.destroy(); });
    req.pipe(up);
  };
}

const app = express();
app.disable('x-powered-by');
const auth = requireBearerAuth({ verifier, resourceMetadataUrl: process.env.RESOURCE_METADATA_URL });
app.use('/sse', auth, proxyTo(SSE_UPSTREAM));
app.use('/mcp', auth, proxyTo(UPSTREAM));
const server = app.listen(Number(PORT), '127.0.0.1', () => console.log(`node peer on 127.0.0.1:${PORT}`));
server.keepAliveTimeout = 300_000;
server.requestTimeout = 0;
