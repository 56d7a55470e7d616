// Makes DPoP proofs (RFC 9449 §4) for bench case 10, one a line, each usable once:
// node lib/dpop-proofs.mjs KEYS_DIR HTU COUNT OUT_FILE
//
// KEYS_DIR is mint.mjs's output (dpop-key.pem, dpop-token.txt). Every proof: typ dpop+jwt, alg ES256,
// the public JWK, htm POST, htu = HTU (the gate's RESOURCE_URI: it compares htu with its own public
// URL, not with the 127.0.0.1 address wrk connects to), iat = now, ath = SHA-256 of the token, and a
// jti no other proof has (random prefix per file + line number), since the gate refuses a replayed jti.
// Made right before the run that uses them, so iat is minutes inside the gate's window at most.
// Reports the time taken on stderr (ES256 signing in node:crypto, one core).
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [keys, htu, countArg, outFile] = process.argv.slice(2);
const count = Number(countArg);
if (!keys || !htu || !outFile || !(count > 0)) {
  console.error('usage: node dpop-proofs.mjs KEYS_DIR HTU COUNT OUT_FILE');
  process.exit(2);
}

const privateKey = createPrivateKey(readFileSync(join(keys, 'dpop-key.pem')));
const { crv, kty, x, y } = createPublicKey(privateKey).export({ format: 'jwk' });
const token = readFileSync(join(keys, 'dpop-token.txt'), 'utf8').trim();
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');

const header = b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } });
const ath = createHash('sha256').update(token).digest('base64url');
const prefix = randomBytes(9).toString('base64url');
const iat = Math.floor(Date.now() / 1000);
const started = process.hrtime.bigint();
const lines = new Array(count);
for (let i = 0; i < count; i++) {
  const input = `${header}.${b64({ jti: `${prefix}-${i}`, htm: 'POST', htu, iat, ath })}`;
  lines[i] = `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}
writeFileSync(outFile, lines.join('\n') + '\n');
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.error(`${count} DPoP proofs in ${seconds.toFixed(1)} s (${((seconds * 1e6) / count).toFixed(0)} µs each)`);
