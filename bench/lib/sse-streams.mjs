// Case 5 client: opens N SSE streams through a proxy, holds them, and reports memory and survival.
// node lib/sse-streams.mjs URL TOKEN N HOLD_SECONDS PROXY_PID UPSTREAM_STATS_URL
// A stream counts as open once its first event ("data:") has arrived. Prints one JSON line.
import net from 'node:net';
import { readFileSync } from 'node:fs';

const [url, token, nArg, holdArg, pidArg, statsUrl] = process.argv.slice(2);
const N = Number(nArg);
const HOLD = Number(holdArg);
const u = new URL(url);
const request = `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nAccept: text/event-stream\r\n` +
  `Authorization: Bearer ${token}\r\n\r\n`;
const rssKiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pidArg}/status`, 'utf8'))[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const rssBefore = rssKiB();
const sockets = [];
let opened = 0, failed = 0, closedAfterOpen = 0, refused = 0;
const firstStatus = {};

function openOne() {
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port) });
    let buf = '';
    let isOpen = false;
    let done = false;
    let timer = null;
    const finish = (ok) => { if (!done) { done = true; clearTimeout(timer); resolve(ok); } };
    s.setNoDelay(true);
    s.on('connect', () => s.write(request));
    s.on('data', (d) => {
      if (isOpen) return;
      buf += d.toString('latin1');
      if (buf.includes('\ndata:')) {
        isOpen = true; opened++; sockets.push(s);
        const st = buf.slice(9, 12); firstStatus[st] = (firstStatus[st] ?? 0) + 1;
        buf = '';
        finish(true);
      } else if (buf.includes('\r\n\r\n') && !buf.startsWith('HTTP/1.1 200')) {
        const st = buf.slice(9, 12); firstStatus[st] = (firstStatus[st] ?? 0) + 1;
        refused++; s.destroy(); finish(false);
      }
    });
    s.on('error', () => {});
    s.on('close', () => { if (isOpen) closedAfterOpen++; else if (!done) { failed++; finish(false); } });
    timer = setTimeout(() => { if (!isOpen) { s.destroy(); } }, 30_000);
  });
}

const t0 = Date.now();
const CONCURRENCY = 200;
let next = 0;
await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
  while (next < N) { next++; await openOne(); }
}));
const openSeconds = (Date.now() - t0) / 1000;
await sleep(HOLD * 1000);
const rssAfter = rssKiB();
let upstreamOpen = null;
try { upstreamOpen = (await (await fetch(statsUrl)).json()).open; } catch { /* reported as null */ }
const stillOpen = sockets.filter((s) => !s.destroyed && s.readyState === 'open').length;
const closedEarly = closedAfterOpen;
for (const s of sockets) s.destroy();
await sleep(300);
console.log(JSON.stringify({
  requested: N, opened, refused, failed, still_open_after_hold: stillOpen, closed_early: closedEarly,
  upstream_open: upstreamOpen, hold_seconds: HOLD, open_seconds: openSeconds,
  rss_before_kib: rssBefore, rss_after_kib: rssAfter,
  per_stream_kib: opened ? (rssAfter - rssBefore) / opened : null, statuses: firstStatus,
}));
process.exit(0);
