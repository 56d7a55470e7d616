// Case 12 client: SSE throughput. A round opens STREAMS streams at once, each GET URL?n=EVENTS (the
// upstream writes EVENTS small events as fast as they are taken, then ends), and counts the events
// that arrive (each ends in a blank line, "\n\n"; the HTTP framing is node's, so chunk boundaries do
// not matter). Rounds repeat until MIN_SECONDS have passed, so the proxy's CPU time (10 ms clock
// ticks) is measured over enough events. Prints one tab-separated line: streams per round, events
// expected, events received, seconds, failed streams, rounds.
// node lib/sse-count.mjs URL TOKEN STREAMS EVENTS MIN_SECONDS
import http from 'node:http';

const [url, token, streamsArg, eventsArg, minArg] = process.argv.slice(2);
const MIN_SECONDS = Number(minArg ?? 0);
const STREAMS = Number(streamsArg);
const EVENTS = Number(eventsArg);
const u = new URL(url);
u.searchParams.set('n', String(EVENTS));
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

let received = 0;
let failed = 0;
const one = () => new Promise((resolve) => {
  const req = http.get(u, { agent, headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` } }, (res) => {
    if (res.statusCode !== 200) { failed++; res.resume(); res.on('end', resolve); return; }
    let last = 0; // the last byte of the previous chunk, for a "\n\n" split across two
    res.on('data', (b) => {
      if (last === 10 && b[0] === 10) received++;
      for (let i = b.indexOf(10); i !== -1 && i + 1 < b.length; i = b.indexOf(10, i + 1)) {
        if (b[i + 1] === 10) { received++; i++; }
      }
      last = b[b.length - 1];
    });
    res.on('end', resolve);
    res.on('error', () => { failed++; resolve(); });
  });
  req.on('error', () => { failed++; resolve(); });
  req.setTimeout(120_000, () => req.destroy(new Error('timeout')));
});

const t0 = process.hrtime.bigint();
const elapsed = () => Number(process.hrtime.bigint() - t0) / 1e9;
let rounds = 0;
do {
  await Promise.all(Array.from({ length: STREAMS }, one));
  rounds++;
} while (elapsed() < MIN_SECONDS && failed === 0);
console.log([STREAMS, rounds * STREAMS * EVENTS, received, elapsed().toFixed(4), failed, rounds].join('\t'));
