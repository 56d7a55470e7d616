// Signing keys for the test authorization server, as a private JWKS (node:crypto, no extra library).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const keyParams = {
  RS256: ['rsa', { modulusLength: 2048 }],
  PS256: ['rsa', { modulusLength: 2048 }],
  ES256: ['ec', { namedCurve: 'P-256' }],
  EdDSA: ['ed25519', {}],
};

/** A fresh private JWK for `alg`, with a new random kid. */
export function generateJwk(alg) {
  const params = keyParams[alg];
  if (!params) throw new Error(`AS_ALG must be one of ${Object.keys(keyParams).join(', ')}, got ${alg}`);
  const { privateKey } = generateKeyPairSync(...params);
  const kid = `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}`;
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

/** The JWKS in `file` when it exists; otherwise a new one (written to `file` when given). */
export function loadOrCreateJwks(alg, file) {
  if (file && existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const jwks = { keys: [generateJwk(alg)] };
  if (file) writeFileSync(file, JSON.stringify(jwks, null, 2), { mode: 0o600 });
  return jwks;
}
