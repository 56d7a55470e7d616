// A recording upstream: answers every request 200 with a small JSON-RPC result and remembers its
// method, path and headers. `GET /__seen` (asked directly, not through the gate) returns them all,
// so a scenario asserts exactly what reached the upstream. Usage: node recording.mjs <port>
// Prints `recording upstream listening on port <port>` once it listens.
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const seen = [];

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/__seen') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(seen));
    return;
  }
  seen.push({ method: req.method, path: req.url, headers: req.headers });
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { recorded: seen.length } }));
  });
});
server.listen(port, '127.0.0.1', () => console.log(`recording upstream listening on port ${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
