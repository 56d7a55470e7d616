// Case 6: time from exec to READY_URL answering 200, and the RSS once ready.
// node lib/startup.mjs TIMES READY_URL CPU -- CMD ARGS...   (env is passed through)
// Each try: spawn (pinned with taskset to CPU), poll READY_URL every 2 ms, record the time, read
// /proc/PID/status VmRSS 1 s later, SIGTERM, wait for exit. Prints one JSON line.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';

const [timesArg, readyUrl, cpu, dashdash, ...cmd] = process.argv.slice(2);
if (dashdash !== '--') { console.error('usage: startup.mjs TIMES READY_URL CPU -- CMD...'); process.exit(2); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const agent = new http.Agent({ keepAlive: false });
const probe = () => new Promise((resolve) => {
  const req = http.get(readyUrl, { agent }, (res) => { res.resume(); resolve(res.statusCode); });
  req.on('error', () => resolve(0));
  req.setTimeout(500, () => { req.destroy(); resolve(0); });
});

let current = null; // the gate being timed, stopped if we are
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { current?.kill('SIGKILL'); process.exit(130); });
const ms = [];
const rss = [];
for (let i = 0; i < Number(timesArg); i++) {
  const t0 = process.hrtime.bigint();
  const child = spawn('taskset', ['-c', cpu, ...cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
  current = child;
  const exited = new Promise((r) => child.on('exit', r));
  let ok = false;
  while (Number(process.hrtime.bigint() - t0) / 1e6 < 10_000) {
    if ((await probe()) === 200) { ok = true; break; }
    await sleep(2);
  }
  if (!ok) { child.kill('SIGKILL'); await exited; console.log(JSON.stringify({ error: 'not ready within 10 s' })); process.exit(1); }
  ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  await sleep(1000);
  rss.push(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))]);
  await exited;
}
console.log(JSON.stringify({ ready_ms: ms, rss_kib: rss }));
