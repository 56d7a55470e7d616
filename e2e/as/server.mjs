// A real OAuth 2.0 authorization server for the e2e suite and the demo: oidc-provider v9.
//
// Environment:
//   AS_PORT        port on 127.0.0.1 (default 9000; 0 = any free port)
//   AS_ISSUER      issuer URL (default http://127.0.0.1:<port>)
//   AS_ALG         signing alg: RS256 (default) | PS256 | ES256 | EdDSA
//   AS_TTL         access token lifetime in seconds (default 300)
//   AS_JWKS_FILE   private JWKS to sign with; created there if missing (stable keys across restarts).
//                  Unset = a fresh key and kid on every start, so a restart is a key rotation.
//   AS_SCOPES      resource scopes on offer (default "mcp:tools mcp:read mcp:admin")
//   AS_DEFAULT_SCOPE  scope granted to an authorization request that names none (default "mcp:tools"),
//                  as IdPs with default scopes do; oidc-provider alone would answer access_denied
//   AS_DPOP        "true" to keep DPoP enabled (default off)
//
// Access tokens are RFC 9068 JWTs (typ at+jwt) whose `aud` is the RFC 8707 `resource` the client
// asked for; any http(s) resource on 127.0.0.1 or localhost is accepted. A resource whose path
// starts with `/opaque/` gets opaque access tokens instead, which only introspection
// (/token/introspection, RFC 7662) can decide. Open dynamic client
// registration at /reg; client_credentials; auth code + PKCE with devInteractions (any login
// and password), which e2e/lib/headless-login.mjs drives with plain form posts; refresh tokens.
// Pre-registered confidential clients: mcp-cc / mcp-cc-secret (client_secret_basic) and
// mcp-cc-post / mcp-cc-secret (client_secret_post), both client_credentials; mcp-exchange /
// mcp-cc-secret (client_secret_basic) may also use RFC 8693 token exchange (as/token-exchange.mjs):
// a JWT access token of this server exchanged for one with the same `sub` for another resource.
//
// Prints one line `AS ready <issuer> kid=<kid>` on stdout once it listens.
import { createServer } from 'node:http';
import Provider, { errors } from 'oidc-provider';
import { loadOrCreateJwks } from './keys.mjs';
import { TOKEN_EXCHANGE, registerTokenExchange } from './token-exchange.mjs';

const port = Number(process.env.AS_PORT ?? 9000);
const alg = process.env.AS_ALG ?? 'RS256';
const ttl = Number(process.env.AS_TTL ?? 300);
const resourceScopes = (process.env.AS_SCOPES ?? 'mcp:tools mcp:read mcp:admin').split(/[\s,]+/).filter(Boolean);
const defaultScope = process.env.AS_DEFAULT_SCOPE ?? 'mcp:tools';
const dpop = process.env.AS_DPOP === 'true';

const jwks = loadOrCreateJwks(alg, process.env.AS_JWKS_FILE);

/** Only test resources on this machine may become an audience. */
function isLocalResource(resource) {
  try {
    const url = new URL(resource);
    return ['http:', 'https:'].includes(url.protocol) && ['127.0.0.1', 'localhost'].includes(url.hostname) && !url.hash;
  } catch {
    return false;
  }
}

/** What a resource indicator's tokens look like: a JWT for `resource`, opaque under `/opaque/`. */
async function resourceServerInfo(ctx, resource) {
  if (!isLocalResource(resource)) throw new errors.InvalidTarget();
  if (new URL(resource).pathname.startsWith('/opaque/')) {
    return { scope: resourceScopes.join(' '), audience: resource, accessTokenTTL: ttl, accessTokenFormat: 'opaque' };
  }
  return {
    scope: resourceScopes.join(' '),
    audience: resource,
    accessTokenTTL: ttl,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg } },
  };
}

const confidentialClient = (id, method, grants = ['client_credentials']) => ({
  client_id: id,
  client_secret: 'mcp-cc-secret',
  token_endpoint_auth_method: method,
  grant_types: grants,
  redirect_uris: [],
  response_types: [],
});

function configuration() {
  return {
    clients: [
      confidentialClient('mcp-cc', 'client_secret_basic'),
      confidentialClient('mcp-cc-post', 'client_secret_post'),
      confidentialClient('mcp-exchange', 'client_secret_basic', ['client_credentials', TOKEN_EXCHANGE]),
    ],
    jwks,
    scopes: ['openid', 'offline_access', ...resourceScopes],
    // With only an EC/OKP/PS key, every client would otherwise fail registration on the RS256 default.
    clientDefaults: {
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: alg,
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    cookies: { keys: ['e2e-only-cookie-key'] },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      registration: { enabled: true, initialAccessToken: false },
      introspection: { enabled: true },
      revocation: { enabled: true },
      dPoP: { enabled: dpop },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx, client, oneOf) => oneOf,
        // The token request of the code flow may omit `resource`: use the one granted.
        useGrantedResource: async () => true,
        getResourceServerInfo: resourceServerInfo,
      },
    },
    // Refresh tokens for every client registered with the refresh_token grant (no offline_access needed).
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: { AccessToken: ttl, ClientCredentials: ttl },
  };
}

// Listen first so that AS_PORT=0 learns its port before the issuer is fixed.
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = process.env.AS_ISSUER ?? `http://127.0.0.1:${server.address().port}`;
const provider = new Provider(issuer, configuration());
provider.on('server_error', (ctx, err) => console.error('server_error', err));
registerTokenExchange(provider, { jwks, resourceServer: resourceServerInfo });
// Runs before the provider's routes: an authorization request without scope gets the default one.
provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/auth' && !ctx.query.scope && defaultScope) {
    ctx.query = { ...ctx.query, scope: defaultScope };
  }
  await next();
});
server.on('request', provider.callback());

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

console.log(`AS ready ${issuer} kid=${jwks.keys[0].kid} alg=${alg}`);
