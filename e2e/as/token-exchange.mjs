// RFC 8693 token exchange for the test authorization server (oidc-provider has no built-in grant):
// registered with provider.registerGrantType, so client authentication, parameter handling and the
// error responses are oidc-provider's own.
//
// The subject token must be an access token this server issued as a JWT: its signature is checked
// with the server's own keys (node:crypto), with `iss` this issuer and `exp` in the future. The
// issued token is a JWT access token (RFC 9068, like every other one here) for the requested
// `resource` (or `audience`), with the subject token's `sub`, signed with the server's key. A target
// that is not a local test resource is refused with `invalid_target`, a bad subject token with
// `invalid_grant`.
import { createPublicKey, verify } from 'node:crypto';
import { errors } from 'oidc-provider';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

const PARAMS = ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'resource', 'scope'];

/** The verified claims of `jwt` if one of `jwks`' keys signed it for `issuer`, else throws invalid_grant. */
function verifyOwnJwt(jwt, jwks, issuer) {
  const invalid = (why) => new errors.InvalidGrant(`subject_token ${why}`);
  const parts = String(jwt ?? '').split('.');
  if (parts.length !== 3) throw invalid('is not a JWT');
  let header;
  let claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url'));
  } catch {
    throw invalid('is not a JWT');
  }
  const jwk = jwks.keys.find((k) => k.kid === header.kid && k.alg === header.alg);
  if (!jwk) throw invalid('was not signed by this server');
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const data = Buffer.from(`${parts[0]}.${parts[1]}`);
  const signature = Buffer.from(parts[2], 'base64url');
  const how = {
    RS256: ['sha256', key],
    PS256: ['sha256', { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 }],
    ES256: ['sha256', { key, dsaEncoding: 'ieee-p1363' }],
    EdDSA: [null, key],
  }[header.alg];
  if (!how || !verify(how[0], data, how[1], signature)) throw invalid('has a bad signature');
  if (claims.iss !== issuer) throw invalid('is from another issuer');
  if (!(claims.exp > Date.now() / 1000)) throw invalid('has expired');
  return claims;
}

/**
 * Registers the grant. `resourceServer(target)` gives the resource server info of a target (the
 * same as the provider's getResourceServerInfo) or throws invalid_target.
 */
export function registerTokenExchange(provider, { jwks, resourceServer }) {
  async function tokenExchange(ctx) {
    const { client, params } = ctx.oidc;
    if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest('subject_token_type must be an access token');
    }
    if (params.requested_token_type && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest('only access tokens are issued');
    }
    const subject = verifyOwnJwt(params.subject_token, jwks, provider.issuer);
    const targets = [params.resource, params.audience].flat().filter(Boolean);
    if (targets.length !== 1) throw new errors.InvalidTarget('exactly one resource or audience');
    const server = await resourceServer(ctx, targets[0]);
    const offered = new Set(server.scope.split(' '));
    const asked = params.scope ? params.scope.split(' ') : [...offered];
    const scope = asked.filter((s) => offered.has(s)).join(' ') || undefined;
    const token = new provider.AccessToken({
      accountId: subject.sub,
      client,
      gty: 'token_exchange',
      scope,
    });
    token.resourceServer = server;
    const value = await token.save();
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: token.expiration,
      scope,
    };
  }
  provider.registerGrantType(TOKEN_EXCHANGE, tokenExchange, PARAMS, ['resource', 'audience']);
}
