// SSE upstream for cases 4 and 5 (node lib/sse-upstream.mjs PORT).
//   GET /sse          200 text/event-stream, one event at once, then the stream ends after CLOSE_MS (10 ms)
//   GET /sse?hold=1   one event at once, then held open (a comment every 30 s) until the client leaves
//   GET /sse?n=N      N events written as fast as the client takes them (each res.write is one chunk;
//                     the next write waits for 'drain' only when the socket pushes back), then the end
//                     (case 12)
//   GET /stats        {"open": streams held open now, "served": streams served in all}
import http from 'node:http';

const port = Number(process.argv[2]);
const closeMs = Number(process.env.CLOSE_MS ?? 10);
let open = 0;
let served = 0;
const event = 'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"hello"}}\n\n';

const server = http.createServer((req, res) => {
  if (req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ open, served }));
    return;
  }
  req.resume();
  served++;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const n = Number(/[?&]n=(\d+)/.exec(req.url)?.[1] ?? 0);
  if (n > 0) {
    let sent = 0;
    const pump = () => {
      while (sent < n) {
        sent++;
        if (!res.write(event)) { res.once('drain', pump); return; }
      }
      res.end();
    };
    pump();
    return;
  }
  res.write(event);
  if (req.url.includes('hold=1')) {
    open++;
    const ping = setInterval(() => res.write(': keep-alive\n\n'), 30_000);
    res.on('close', () => { open--; clearInterval(ping); });
  } else {
    setTimeout(() => res.end(), closeMs);
  }
});
server.keepAliveTimeout = 300_000;
server.requestTimeout = 0;
server.headersTimeout = 60_000;
server.maxConnections = 100_000;
server.listen(port, '127.0.0.1', 4096, () => console.log(`sse upstream on 127.0.0.1:${port}`));
