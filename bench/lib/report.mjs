// Turns the raw results of bench/run (its temp dir) into the Markdown report on stdout.
// node lib/report.mjs TMP_DIR LATENCY_RATE ELAPSED_SECONDS
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const [dir, directRps, elapsed] = process.argv.slice(2);
const read = (f) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : '');
const tsv = (f) => read(f).split('\n').filter(Boolean).map((l) => l.split('\t'));
const json = (f) => { try { return JSON.parse(read(f) || '{}'); } catch { return {}; } };

const median = (xs) => {
  const a = xs.filter((x) => Number.isFinite(x)).sort((p, q) => p - q);
  if (!a.length) return NaN;
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
};
const pct = (xs, p) => {
  const a = xs.filter((x) => Number.isFinite(x)).sort((u, v) => u - v);
  return a.length ? a[Math.max(0, Math.ceil(p * a.length) - 1)] : NaN;
};
const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const range = (xs, d = 2) => {
  const a = xs.filter((x) => Number.isFinite(x));
  if (!a.length) return 'n/a';
  const med = fmt(median(a), d);
  return a.length > 1 ? `${med} (${fmt(Math.min(...a), d)}–${fmt(Math.max(...a), d)})` : med;
};
const table = (head, rows, textValues = false) => {
  console.log(`| ${head.join(' | ')} |`);
  console.log(`|${head.map((h, i) => (i === 0 || textValues ? '---' : '---:')).join('|')}|`);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log('');
};

// results.tsv: case run target rps p50 p99 non2xx requests errors cache-hits cache-misses sched-fifo
// user-cpu-us kernel-cpu-us (of the target's processes during the run; direct = the upstream's)
const results = tsv('results.tsv').map(([c, run, target, rps, p50, p99, non2xx, reqs, errs, hits, misses, rt, usr, sys]) => ({
  c, run: Number(run), target, rps: Number(rps), p50: Number(p50), p99: Number(p99),
  non2xx: Number(non2xx), reqs: Number(reqs), errs: Number(errs), hits: Number(hits), misses: Number(misses),
  rt: rt === 'on', usr: Number(usr), sys: Number(sys),
}));
// A table where some rows ran SCHED_FIFO: mark the others.
const schedMark = (rows, isRt) => (rows.some(isRt) && !rows.every(isRt) ? (r) => (isRt(r) ? '' : ' †') : () => '');
const get = (c, target) => results.filter((r) => r.c === c && r.target === target);
const at = (c, target, run) => results.find((r) => r.c === c && r.target === target && r.run === run);
const PEERS = ['nginx', 'haproxy', 'apache', 'node', 'mcp-gate', 'mcp-gate-base'];
const targets = ['direct', ...PEERS].filter((t) => results.some((r) => r.target === t) || t === 'direct');

const machine = tsv('machine.tsv');
console.log('# mcp-gate benchmark\n');
console.log('## Machine and settings\n');
table(['item', 'value'], [...machine.map(([k, v]) => [k, v]), ['bench time', `${elapsed} s`]], true);

// ---- sanity
console.log('## Sanity: status codes for one POST /mcp\n');
console.log('direct and nginx do no auth (200 everywhere is right for them); every other peer must answer 200 then 401 ×5.\n');
const sanity = tsv('sanity.tsv');
table(['target', 'valid token', 'no token', 'forged signature', 'wrong aud', 'wrong iss', 'expired', 'verdict'],
  sanity.map(([t, ...codes]) => {
    const auth = !['direct', 'nginx'].includes(t);
    const ok = auth ? codes[0] === '200' && codes.slice(1).every((x) => x === '401') : codes[0] === '200';
    return [t, ...codes, ok ? 'ok' : '**unexpected**'];
  }));

// ---- throughput cases
function throughputCase(title, c, baseCase, note, expectRefused) {
  console.log(`## ${title}\n`);
  if (note) console.log(`${note}\n`);
  const runs = [...new Set(results.filter((r) => r.c === c).map((r) => r.run))];
  const rows = [];
  for (const t of targets) {
    const baseline = ['direct', 'nginx'].includes(t);
    const dc = baseline ? baseCase : c; // direct and nginx do no auth: c3 reuses their c1/c2 figures
    const rs = get(dc, t);
    if (!rs.length) continue;
    const vsDirect = runs.map((run) => at(dc, t, run)?.rps / at(baseCase, 'direct', run)?.rps);
    const vsNginx = runs.map((run) => at(dc, t, run)?.rps / at(baseCase, 'nginx', run)?.rps);
    const refused = rs.reduce((s, r) => s + r.non2xx, 0);
    const total = rs.reduce((s, r) => s + r.reqs, 0);
    const label = baseline && dc !== c ? `${t} (valid token, ${dc === 'c1' ? 'case 1' : 'case 2'})` : t;
    rows.push([label, int(median(rs.map((r) => r.rps))), range(vsDirect), range(vsNginx),
      fmt(median(rs.map((r) => r.p50))), fmt(median(rs.map((r) => r.p99))),
      total ? `${fmt((100 * refused) / total, 1)} %` : 'n/a', String(rs.reduce((s, r) => s + r.errs, 0))]);
  }
  table(['target', 'req/s (median)', '× direct', '× nginx', 'p50 ms', 'p99 ms',
    expectRefused ? 'refused (non-2xx)' : 'non-2xx', 'socket errors'], rows);
  const g = get(c, 'mcp-gate').filter((r) => Number.isFinite(r.hits) && Number.isFinite(r.misses));
  const h = g.reduce((a, r) => a + r.hits, 0);
  const m = g.reduce((a, r) => a + r.misses, 0);
  if (g.length && h + m > 0) {
    const perRun = g.map((r) => (r.hits + r.misses ? `${fmt((100 * r.hits) / (r.hits + r.misses), 1)} %` : 'n/a')).join(', ');
    console.log(`mcp-gate's verified-token cache over these runs (from its /metrics): ${int(h)} hits, ${int(m)} misses; hit rate per run: ${perRun}.\n`);
  }
}
const tokens = read('keys/tokens.txt').split('\n').filter(Boolean).length;
throughputCase('Case 1: the same valid token on every request', 'c1', 'c1',
  '× direct / × nginx: this proxy\'s req/s divided by direct\'s (nginx\'s) in the same run; median of the runs (min–max).');
const perToken = PEERS.filter((t) => t !== 'nginx' && get('c2', t).length)
  .map((t) => `${t} ${fmt(median(get('c2', t).map((r) => r.reqs)) / tokens, 1)}`).join(', ');
throughputCase(`Case 2: ${int(tokens)} distinct valid tokens in rotation`, 'c2', 'c2',
  `Round-robin over ${int(tokens)} tokens (one wrk thread walks the list). Times each token came round per run: ${perToken}. The runs follow each other, so a verified-token cache that holds all ${int(tokens)} tokens hits from the second pass on; mod_oauth2's default cache holds 1000 entries (FIFO) and keeps missing.`);
throughputCase('Case 3a: no token (the 401 path)', 'c3a', 'c1',
  'Refusals per second an attacker can make each proxy produce; compared with direct and nginx answering a valid token in case 1 of the same run. "refused" should be 100 %.', true);
throughputCase('Case 3b: forged signatures (valid claims, random signature, never the same token twice)', 'c3b', 'c2',
  'The forged tokens are walked round-robin and 10 characters in the middle of each signature are replaced by a clock-seeded counter, so no token repeats and no cache can help: every request costs a signature check that fails. Compared with direct and nginx under the case-2 script of the same run. "refused" should be 100 %.', true);

// ---- CPU per request
{
  console.log('## CPU per request\n');
  console.log('CPU time of each target\'s own processes during the throughput runs (from /proc/PID/stat, all threads and child processes; 10 ms clock ticks), divided by the requests wrk completed: what one request costs the proxy, independent of how busy the machine was. "direct" is the upstream nginx alone. µs per request, median of the runs, as total (user + kernel); "× nginx" = this total divided by nginx\'s in the same run (lower is cheaper).\n');
  const perReq = (r) => ({ usr: r.usr / r.reqs, sys: r.sys / r.reqs });
  const cell = (rs) => {
    const v = rs.filter((r) => r.reqs > 0 && Number.isFinite(r.usr)).map(perReq);
    if (!v.length) return 'n/a';
    return `${fmt(median(v.map((x) => x.usr + x.sys)), 1)} (${fmt(median(v.map((x) => x.usr)), 1)} + ${fmt(median(v.map((x) => x.sys)), 1)})`;
  };
  const vsNginx = (c, t) => {
    const runs = [...new Set(results.filter((r) => r.c === c).map((r) => r.run))];
    const cost = (r) => (r && r.reqs > 0 ? (r.usr + r.sys) / r.reqs : NaN);
    return range(runs.map((run) => cost(at(c, t, run)) / cost(at(c, 'nginx', run))));
  };
  const rows = targets.filter((t) => get('c1', t).length).map((t) => [t, cell(get('c1', t)), vsNginx('c1', t),
    cell(get('c2', t)), vsNginx('c2', t), cell(get('c3a', t)), cell(get('c3b', t))]);
  table(['target', 'case 1 µs', 'case 1 × nginx', 'case 2 µs', 'case 2 × nginx', 'case 3a µs', 'case 3b µs'], rows);
}

// ---- latency at fixed offered rates
const latCases = [...new Set(results.filter((r) => r.c.startsWith('lat-')).map((r) => r.c))];
latCases.forEach((lc, k) => {
  const rate = Number(lc.slice(4));
  const half = rate === Math.floor(Number(directRps) / 2);
  console.log(`## Latency at ${int(rate)} req/s offered${half ? ' (half of direct\'s case-1 saturation)' : ''}, case-1 requests\n`);
  if (k === 0) {
    console.log('wrk paced by its Lua delay(): requests are sent on a schedule at the offered rate (LuaJIT clock, millisecond granularity); a proxy that cannot keep up gets no catch-up burst, shows a lower achieved rate and is marked saturated, and its latency then includes queueing. Latency is measured by wrk from sending a request to its response. "added" = this proxy minus direct in the same run, median of the runs (min–max). Target for mcp-gate: p99 added ≤ 1 ms.\n');
  }
  const runs = [...new Set(results.filter((r) => r.c === lc).map((r) => r.run))];
  const rows = [];
  const all = results.filter((r) => r.c === lc);
  const mark = schedMark(all, (r) => r.rt);
  let marked = false;
  for (const t of targets) {
    const rs = get(lc, t);
    if (!rs.length) continue;
    const m = mark(rs[0]);
    marked ||= m !== '';
    const add50 = runs.map((run) => at(lc, t, run)?.p50 - at(lc, 'direct', run)?.p50);
    const add99 = runs.map((run) => at(lc, t, run)?.p99 - at(lc, 'direct', run)?.p99);
    const achieved = median(rs.map((r) => r.rps));
    const m99 = median(add99);
    const sat = achieved < 0.95 * rate;
    rows.push([t + m, int(achieved) + (sat ? ' (saturated)' : ''), fmt(median(rs.map((r) => r.p50)), 3), fmt(median(rs.map((r) => r.p99)), 3),
      t === 'direct' ? '—' : range(add50, 3), t === 'direct' ? '—' : range(add99, 3),
      t === 'direct' ? '—' : (m99 <= 1 ? 'yes' : 'no')]);
  }
  table(['target', 'achieved req/s', 'p50 ms', 'p99 ms', 'p50 added ms', 'p99 added ms', 'p99 added ≤ 1 ms'], rows);
  if (all.some((r) => r.rt)) console.log(`Servers, upstream and wrk ran SCHED_FIFO for this table${marked ? '; † = normal scheduling (SCHED_FIFO stalls Node on one core, see bench/README.md), so that row also carries the machine\'s other load' : ''}.\n`);
});

// ---- case 4
console.log('## Case 4: time to first byte of an SSE response (GET /sse, upstream writes one event at once)\n');
{
  const rows = [];
  const ttfb = tsv('ttfb.tsv').map(([t, v]) => { const [s, code, rt] = v.split(' '); return { t, ms: Number(s) * 1000, code, rt: rt === 'on' }; });
  const mark = schedMark(ttfb, (x) => x.rt);
  const direct = ttfb.filter((x) => x.t === 'direct').map((x) => x.ms);
  for (const t of targets) {
    const xs = ttfb.filter((x) => x.t === t);
    if (!xs.length) continue;
    const ms = xs.map((x) => x.ms);
    const bad = xs.filter((x) => x.code !== '200').length;
    rows.push([t + mark(xs[0]), String(xs.length), fmt(median(ms), 3), fmt(pct(ms, 0.99), 3),
      t === 'direct' ? '—' : fmt(median(ms) - median(direct), 3), t === 'direct' ? '—' : fmt(pct(ms, 0.99) - pct(direct, 0.99), 3),
      String(bad)]);
  }
  console.log(`curl \`-w %{time_starttransfer}\`, a new connection per sample, samples interleaved across targets${ttfb.some((x) => x.rt) ? '; servers, upstream and curl under SCHED_FIFO' + (ttfb.some((x) => !x.rt) ? ' († = normal scheduling)' : '') : ''}.\n`);
  table(['target', 'samples', 'median ms', 'p99 ms', 'median added ms', 'p99 added ms', 'non-200'], rows);
}

// ---- case 5
console.log('## Case 5: concurrent idle SSE streams through mcp-gate\n');
{
  const s = json('streams.json');
  if (s.requested) {
    table(['item', 'value'], [
      ['streams requested', int(s.requested)],
      ['opened (first event received through the gate)', int(s.opened)],
      ['refused / failed to open', `${int(s.refused)} / ${int(s.failed)}`],
      [`still open after ${s.hold_seconds} s held`, int(s.still_open_after_hold)],
      ['closed early', int(s.closed_early)],
      ['open at the upstream', s.upstream_open === null ? 'n/a' : int(s.upstream_open)],
      ['time to open them all', `${fmt(s.open_seconds, 1)} s`],
      ['gate RSS before → after', `${fmt(s.rss_before_kib / 1024, 1)} MiB → ${fmt(s.rss_after_kib / 1024, 1)} MiB`],
      ['memory per stream (RSS delta / opened)', `${fmt(s.per_stream_kib, 1)} KiB`],
      ['all stayed open', s.still_open_after_hold === s.requested ? 'yes' : '**no**'],
    ]);
  } else {
    console.log(`not measured: ${JSON.stringify(s)}\n`);
  }
}

// ---- case 6
console.log('## Case 6: start-up, idle memory, size\n');
{
  const s = json('startup.json');
  const size = Number(read('gate-size.txt'));
  const rows = [];
  if (s.ready_ms) {
    rows.push([`mcp-gate exec → /readyz 200 (IdP up; ${s.ready_ms.length} starts)`, `${range(s.ready_ms, 1)} ms`]);
    rows.push(['mcp-gate idle RSS (1 s after ready)', `${fmt(median(s.rss_kib) / 1024, 1)} MiB`]);
  } else {
    rows.push(['mcp-gate start-up', `not measured: ${JSON.stringify(s)}`]);
  }
  rows.push(['mcp-gate binary size', `${fmt(size / 1048576, 1)} MiB (${int(size)} bytes)`]);
  for (const [peer, kib] of tsv('idle-rss.tsv')) rows.push([`idle RSS after start, ${peer} (all its processes)`, `${fmt(Number(kib) / 1024, 1)} MiB`]);
  table(['item', 'value'], rows);
}

// ---- case 7: what MCP-aware authorization costs
{
  const runs = [...new Set(results.filter((r) => r.c === 'c7').map((r) => r.run))];
  if (runs.length) {
    console.log('## Case 7: a 1 KiB tools/call, without a policy and with a five-rule POLICY_FILE\n');
    console.log('Same token, same upstream. mcp-gate-policy reads the body, checks it, and tries all five rules (the call matches the last). CPU per request in µs (user + kernel) of the gate process, median of runs (min–max).\n');
    const cost = (r) => (r && r.reqs > 0 ? (r.usr + r.sys) / r.reqs : NaN);
    const rows = [];
    for (const t of ['mcp-gate', 'mcp-gate-policy']) {
      const rs = get('c7', t);
      rows.push([t, fmt(median(rs.map((r) => r.rps)), 0), range(rs.map(cost), 1)]);
    }
    const added = runs.map((run) => cost(at('c7', 'mcp-gate-policy', run)) - cost(at('c7', 'mcp-gate', run)));
    const ratio = runs.map((run) => at('c7', 'mcp-gate-policy', run)?.rps / at('c7', 'mcp-gate', run)?.rps);
    table(['target', 'req/s', 'CPU µs per request'], rows);
    console.log(`Added by the policy: ${range(added, 1)} µs of CPU per request; req/s with the policy ÷ without: ${range(ratio)}.\n`);
  }
}

// ---- case 8: cached introspection and cached exchange
{
  const runs = [...new Set(results.filter((r) => r.c === 'c8').map((r) => r.run))];
  if (runs.length) {
    console.log('## Case 8: cached introspection and cached token exchange, beside case 1\n');
    console.log('Case 1\'s request and token. mcp-gate checks the JWT (verified-token cache); mcp-gate-introspect decides it by introspection (TOKEN_VALIDATION=introspect), mcp-gate-exchange checks it and exchanges it for the upstream (TOKEN_EXCHANGE); both answers come from the gate\'s cache after the first request. CPU per request in µs (user + kernel) of the gate process, median of runs (min–max).\n');
    const cost = (r) => (r && r.reqs > 0 ? (r.usr + r.sys) / r.reqs : NaN);
    const rows = [];
    for (const t of ['mcp-gate', 'mcp-gate-introspect', 'mcp-gate-exchange']) {
      const rs = get('c8', t);
      if (!rs.length) continue;
      const added = runs.map((run) => cost(at('c8', t, run)) - cost(at('c8', 'mcp-gate', run)));
      const ratio = runs.map((run) => at('c8', t, run)?.rps / at('c8', 'mcp-gate', run)?.rps);
      rows.push([t, fmt(median(rs.map((r) => r.rps)), 0), range(rs.map(cost), 1),
        t === 'mcp-gate' ? '–' : range(added, 1), t === 'mcp-gate' ? '–' : range(ratio)]);
    }
    table(['target', 'req/s', 'CPU µs per request', 'added CPU µs vs mcp-gate', 'req/s ÷ mcp-gate\'s'], rows);
  }
}

// ---- case 9: what rate limiting costs
{
  const runs = [...new Set(results.filter((r) => r.c === 'c9').map((r) => r.run))];
  if (runs.length) {
    const cost = (r) => (r && r.reqs > 0 ? (r.usr + r.sys) / r.reqs : NaN);
    console.log('## Case 9: rate limiting\n');
    console.log('Case-1 requests (one valid token) through the plain gate and through gates with `RATE_LIMIT_SUBJECT=1000000/1s` (decided on every request, never reached), in process and in a Redis (`redis-server --save \'\' --appendonly no` on the load CPU, `RATE_LIMIT_REDIS_TIMEOUT=100ms`). CPU per request in µs (user + kernel) of the gate process, median of runs (min–max); Redis\'s own CPU per request is shown apart (it runs beside wrk, not on the proxy CPU).\n');
    const redis = tsv('redis-cpu.tsv').map(([run, usr, sys, cmds]) => ({ run: Number(run), usr: Number(usr), sys: Number(sys), cmds: Number(cmds) }));
    const rows = [];
    for (const t of ['mcp-gate', 'mcp-gate-rl-local', 'mcp-gate-rl-redis']) {
      const rs = get('c9', t);
      const added = runs.map((run) => cost(at('c9', t, run)) - cost(at('c9', 'mcp-gate', run)));
      let redisCell = '—';
      if (t === 'mcp-gate-rl-redis') {
        const per = redis.map((x) => { const r = at('c9', t, x.run); return r && r.reqs > 0 ? (x.usr + x.sys) / r.reqs : NaN; });
        const share = redis.map((x) => { const r = at('c9', t, x.run); return r && r.reqs > 0 ? x.cmds / r.reqs : NaN; });
        redisCell = `${range(per, 1)} µs; ${range(share)} EVALSHA per request`;
      }
      rows.push([t, fmt(median(rs.map((r) => r.rps)), 0), range(rs.map(cost), 1), t === 'mcp-gate' ? '—' : range(added, 1), redisCell]);
    }
    table(['target', 'req/s', 'gate CPU µs per request', 'added over mcp-gate', 'redis-server'], rows);
    console.log('"EVALSHA per request" near 1 means Redis decided each request (one script call); well below 1, decisions fell back to the local limits (Redis did not answer within the bound).\n');
    const fruns = [...new Set(results.filter((r) => r.c === 'c9f').map((r) => r.run))];
    if (fruns.length) {
      console.log('Garbage-token flood: the forged tokens of case 3b (never the same twice), to the plain gate (401 after a signature check) and to a gate with `RATE_LIMIT_IP=1/1h` (429 before the token is looked at).\n');
      const frows = [];
      for (const t of ['mcp-gate', 'mcp-gate-flood']) {
        const rs = get('c9f', t);
        const refused = rs.reduce((x, r) => x + r.non2xx, 0);
        const total = rs.reduce((x, r) => x + r.reqs, 0);
        frows.push([t === 'mcp-gate' ? 'mcp-gate (401, signature checked)' : 'mcp-gate-flood (429 by address)',
          fmt(median(rs.map((r) => r.rps)), 0), range(rs.map(cost), 1), total ? `${fmt((100 * refused) / total, 1)} %` : 'n/a']);
      }
      table(['target', 'refusals/s', 'CPU µs per refused request', 'refused (non-2xx)'], frows);
      const ratio = fruns.map((run) => cost(at('c9f', 'mcp-gate-flood', run)) / cost(at('c9f', 'mcp-gate', run)));
      console.log(`CPU per request refused by the address limit ÷ per forged signature refused: ${range(ratio)}.\n`);
    }
  }
}

// ---- case 10: what DPoP costs
{
  const runs = [...new Set(results.filter((r) => r.c === 'c10').map((r) => r.run))];
  if (runs.length) {
    const [, first, replay, bearer, proofsArg] = tsv('dpop-sanity.tsv')[0] ?? [];
    const proofs = Number(proofsArg);
    console.log('## Case 10: DPoP, a fresh ES256 proof on every request, beside the same request as Bearer\n');
    console.log(`The case-1 request (a ping, one token from the verified-token cache) through mcp-gate as a Bearer token and through mcp-gate-dpop as a DPoP-bound token (\`cnf.jkt\`) with a new proof per request: the proof's ES256 signature, JWK thumbprint, \`ath\`, \`htu\`, \`iat\` and the replay cache are checked every time. Proofs are single-use: ${int(proofs)} are made before each run, and a run that uses them all stops sending (marked "ran out"). mcp-gate-dpop answered ${first} to a fresh proof, ${replay} to its replay and ${bearer} to the bound token sent as Bearer. CPU per request in µs (user + kernel) of the gate process, median of runs (min–max).\n`);
    const cost = (r) => (r && r.reqs > 0 ? (r.usr + r.sys) / r.reqs : NaN);
    // wrk's req/s divides by the whole duration, also after a thread stopped for want of proofs.
    const ranOut = (r) => r.target === 'mcp-gate-dpop' && r.reqs >= 0.99 * proofs - 64;
    const rows = [];
    for (const t of ['mcp-gate', 'mcp-gate-dpop']) {
      const rs = get('c10', t);
      rows.push([t, fmt(median(rs.map((r) => r.rps)), 0), rs.map((r) => int(r.reqs) + (ranOut(r) ? ' (ran out)' : '')).join(', '),
        String(rs.reduce((a, r) => a + r.non2xx, 0)), range(rs.map(cost), 1)]);
    }
    const c1 = get('c1', 'mcp-gate');
    if (c1.length) rows.push(['mcp-gate, case 1 (same run)', fmt(median(c1.map((r) => r.rps)), 0), c1.map((r) => int(r.reqs)).join(', '),
      String(c1.reduce((a, r) => a + r.non2xx, 0)), range(c1.map(cost), 1)]);
    const added = runs.map((run) => cost(at('c10', 'mcp-gate-dpop', run)) - cost(at('c10', 'mcp-gate', run)));
    const ratio = runs.map((run) => at('c10', 'mcp-gate-dpop', run)?.rps / at('c10', 'mcp-gate', run)?.rps);
    table(['target', 'req/s', 'requests per run', 'non-2xx', 'CPU µs per request'], rows);
    console.log(`Added by DPoP: ${range(added, 1)} µs of CPU per request; req/s with DPoP ÷ Bearer: ${range(ratio)}.\n`);
    if (get('c10', 'mcp-gate-dpop').some(ranOut)) {
      console.log(`A run marked "ran out" used all ${int(proofs)} proofs before its time was up: its req/s is understated (wrk divides by the full duration), its CPU per request is not. Raise BENCH_DPOP_PROOFS.\n`);
    }
  }
}

// ---- case 11: large bodies
{
  const runs = [...new Set(results.filter((r) => r.c === 'c11get').map((r) => r.run))];
  if (runs.length) {
    console.log('## Case 11: large bodies (a 1 MiB response, a 256 KiB request)\n');
    console.log('`GET /large`: the upstream serves a 1 MiB file; `POST /upload`: a 256 KiB body the upstream discards (nginx with `proxy_request_buffering off` there, so it streams the body as the gate does instead of spooling it to disk). Case-1 token, 16 connections. MiB/s = req/s × body size; CPU per MiB = the target\'s CPU (user + kernel) ÷ MiB moved, µs; "× nginx" per run, median (min–max). For direct the CPU is the upstream\'s.\n');
    const shapes = [['1 MiB response', 'c11get', 1], ['256 KiB request', 'c11post', 0.25]];
    for (const [label, c, mib] of shapes) {
      const rows = [];
      const mbps = (r) => (r ? r.rps * mib : NaN);
      const cpuPerMib = (r) => (r && r.reqs > 0 ? (r.usr + r.sys) / (r.reqs * mib) : NaN);
      for (const t of targets) {
        const rs = get(c, t);
        if (!rs.length) continue;
        const vs = (f) => range(runs.map((run) => f(at(c, t, run)) / f(at(c, 'nginx', run))));
        rows.push([t, fmt(median(rs.map(mbps)), 0), t === 'nginx' ? '—' : vs(mbps),
          fmt(median(rs.map(cpuPerMib)), 0), t === 'nginx' ? '—' : vs(cpuPerMib),
          String(rs.reduce((a, r) => a + r.non2xx, 0)), String(rs.reduce((a, r) => a + r.errs, 0))]);
      }
      console.log(`### ${label}\n`);
      table(['target', 'MiB/s', 'MiB/s × nginx', 'CPU µs per MiB', 'CPU × nginx', 'non-2xx', 'socket errors'], rows);
    }
  }
}

// ---- case 12: SSE throughput
{
  // sse-throughput.tsv: case run target streams expected received seconds failed rounds user-cpu-us kernel-cpu-us
  const sse = tsv('sse-throughput.tsv').map(([c, run, target, streams, expected, received, seconds, failed, rounds, usr, sys]) => ({
    c, run: Number(run), target, streams: Number(streams), expected: Number(expected), received: Number(received),
    seconds: Number(seconds), failed: Number(failed), rounds: Number(rounds), usr: Number(usr), sys: Number(sys),
  }));
  if (sse.length) {
    console.log('## Case 12: SSE throughput\n');
    console.log('The SSE upstream writes small events (114 bytes) as fast as they are taken; `lib/sse-count.mjs` opens the streams at once and counts every event, round after round for at least BENCH_DURATION seconds. events/s = events received ÷ time from the first request to the last round\'s end (the upstream and the client share the load CPU, so this is bounded by them as well as by the proxy); CPU per event = the proxy\'s CPU (user + kernel) ÷ events, in ns (for direct: the upstream\'s). "× nginx" per run, median (min–max).\n');
    for (const c of ['c12a', 'c12b']) {
      const all = sse.filter((r) => r.c === c);
      if (!all.length) continue;
      const runs = [...new Set(all.map((r) => r.run))];
      const find = (t, run) => all.find((r) => r.target === t && r.run === run);
      const eps = (r) => (r && r.seconds > 0 ? r.received / r.seconds : NaN);
      const ns = (r) => (r && r.received > 0 ? (1000 * (r.usr + r.sys)) / r.received : NaN);
      const rows = [];
      for (const t of targets) {
        const rs = all.filter((r) => r.target === t);
        if (!rs.length) continue;
        const vs = (f) => range(runs.map((run) => f(find(t, run)) / f(find('nginx', run))));
        const got = rs.reduce((a, r) => a + r.received, 0);
        const want = rs.reduce((a, r) => a + r.expected, 0);
        rows.push([t, int(median(rs.map(eps))), t === 'nginx' ? '—' : vs(eps), fmt(median(rs.map(ns)), 0),
          t === 'nginx' ? '—' : vs(ns), got === want ? 'all' : `**${int(got)} of ${int(want)}**`,
          String(rs.reduce((a, r) => a + r.failed, 0))]);
      }
      const r0 = all[0];
      console.log(`### ${c === 'c12a' ? '12a' : '12b'}: ${int(r0.streams)} stream${r0.streams > 1 ? 's' : ''} × ${int(r0.expected / r0.rounds / r0.streams)} events (rounds per run: ${all.map((r) => r.rounds).join(', ')})\n`);
      table(['target', 'events/s', 'events/s × nginx', 'CPU ns per event', 'CPU × nginx', 'events received', 'failed streams'], rows);
    }
  }
}

// ---- summary
console.log('## Summary: mcp-gate req/s divided by each peer\'s, same run, median of runs\n');
{
  const cases = [['case 1 (one token)', 'c1'], ['case 2 (token rotation)', 'c2'], ['case 3a (no token)', 'c3a'], ['case 3b (forged)', 'c3b']];
  const runsOf = (c) => [...new Set(results.filter((r) => r.c === c).map((r) => r.run))];
  const withBase = results.some((r) => r.target === 'mcp-gate-base');
  const rows = [];
  for (const [label, c] of cases) {
    if (!get(c, 'mcp-gate').length) continue;
    const base = c === 'c3a' ? 'c1' : c === 'c3b' ? 'c2' : c;
    const cell = (peer, pc) => range(runsOf(c).map((run) => at(c, 'mcp-gate', run)?.rps / at(pc, peer, run)?.rps));
    const row = [label, cell('direct', base), cell('nginx', base), cell('haproxy', c), cell('apache', c), cell('node', c)];
    if (withBase) row.push(cell('mcp-gate-base', c));
    rows.push(row);
  }
  const head = ['case', '÷ direct', '÷ nginx (no auth)', '÷ haproxy', '÷ apache', '÷ node'];
  table(withBase ? [...head, '÷ mcp-gate-base (MCP_GATE_BASE_BIN)'] : head, rows);
}
