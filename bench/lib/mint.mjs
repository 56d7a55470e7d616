// Makes the benchmark's identity provider and tokens (node lib/mint.mjs OUT_DIR ISSUER AUDIENCE COUNT).
//
// OUT_DIR/idp/.well-known/oauth-authorization-server  RFC 8414 metadata, issuer = ISSUER
// OUT_DIR/idp/jwks.json                                the public key as a JWKS (kid, alg RS256)
// OUT_DIR/pub.pem                                      the same key as SPKI PEM (HAProxy jwt_verify has no JWKS)
// OUT_DIR/token.txt                                    one valid token (case 1)
// OUT_DIR/tokens.txt                                   COUNT distinct valid tokens, one a line (case 2)
// OUT_DIR/forged.txt                                   COUNT distinct tokens with valid claims and a random signature (case 3)
// OUT_DIR/bad-aud.txt, bad-iss.txt, expired.txt        one token each, for the sanity checks
// OUT_DIR/dpop-key.pem                                 a DPoP client's P-256 private key (PKCS#8 PEM, case 10)
// OUT_DIR/dpop-token.txt                               one valid token bound to that key (cnf.jkt, RFC 9449 §6.1)
//
// Every token: RS256, typ at+jwt, kid, iss, aud, exp (+1 day), iat, nbf, jti, sub, client_id, scope.
import { createHash, createSign, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [out, issuer, audience, countArg] = process.argv.slice(2);
const count = Number(countArg ?? 10000);
if (!out || !issuer || !audience || !(count > 0)) {
  console.error('usage: node mint.mjs OUT_DIR ISSUER AUDIENCE COUNT');
  process.exit(2);
}

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const kid = 'bench-' + randomBytes(6).toString('hex');
const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

mkdirSync(join(out, 'idp', '.well-known'), { recursive: true });
const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
writeFileSync(join(out, 'idp', 'jwks.json'), JSON.stringify({ keys: [jwk] }));
writeFileSync(join(out, 'idp', '.well-known', 'oauth-authorization-server'), JSON.stringify({
  issuer,
  jwks_uri: `${issuer}/jwks.json`,
  authorization_endpoint: `${issuer}/authorize`,
  token_endpoint: `${issuer}/token`,
  response_types_supported: ['code'],
  grant_types_supported: ['authorization_code', 'client_credentials'],
  code_challenge_methods_supported: ['S256'],
}));
writeFileSync(join(out, 'pub.pem'), publicKey.export({ format: 'pem', type: 'spki' }));

const header = b64({ alg: 'RS256', typ: 'at+jwt', kid });
const now = Math.floor(Date.now() / 1000);
function claims(i, over = {}) {
  return {
    iss: issuer, aud: audience, sub: `bench-user-${i}`, client_id: 'bench-client',
    scope: 'mcp:tools mcp:read', iat: now - 10, nbf: now - 10, exp: now + 86400,
    jti: randomBytes(12).toString('base64url'), ...over,
  };
}
function sign(payload) {
  const input = `${header}.${b64(payload)}`;
  return `${input}.${createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url')}`;
}
function forge(payload) {
  return `${header}.${b64(payload)}.${randomBytes(256).toString('base64url')}`;
}

writeFileSync(join(out, 'token.txt'), sign(claims(0)) + '\n');
const valid = [];
const forged = [];
for (let i = 1; i <= count; i++) {
  valid.push(sign(claims(i)));
  forged.push(forge(claims(i)));
}
writeFileSync(join(out, 'tokens.txt'), valid.join('\n') + '\n');
writeFileSync(join(out, 'forged.txt'), forged.join('\n') + '\n');
writeFileSync(join(out, 'bad-aud.txt'), sign(claims(0, { aud: audience + '-other' })) + '\n');
writeFileSync(join(out, 'bad-iss.txt'), sign(claims(0, { iss: issuer + '/other' })) + '\n');
writeFileSync(join(out, 'expired.txt'), sign(claims(0, { iat: now - 7200, nbf: now - 7200, exp: now - 3600 })) + '\n');

// Case 10: a DPoP-bound token. Its proofs are made by lib/dpop-proofs.mjs right before each run (their
// iat must be fresh and each jti is used once). cnf.jkt is the key's RFC 7638 thumbprint: the required
// members of the public JWK in lexicographic order, no whitespace, SHA-256, base64url.
const dpopKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const { crv, kty, x, y } = dpopKey.publicKey.export({ format: 'jwk' });
const jkt = createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
writeFileSync(join(out, 'dpop-key.pem'), dpopKey.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
writeFileSync(join(out, 'dpop-token.txt'), sign(claims(0, { sub: 'bench-dpop-user', cnf: { jkt } })) + '\n');
console.log(`kid=${kid} tokens=${count} dpop-jkt=${jkt}`);
