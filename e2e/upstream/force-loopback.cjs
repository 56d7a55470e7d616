// Preload (`node -r ./force-loopback.cjs …`) that makes every TCP listener of the process bind
// 127.0.0.1. server-everything calls `app.listen(PORT)`, which would bind all interfaces.
const net = require('node:net');

const listen = net.Server.prototype.listen;
const isWildcard = (host) => host === undefined || host === '' || host === '0.0.0.0' || host === '::';

net.Server.prototype.listen = function (...args) {
  const [first] = args;
  if (first !== null && typeof first === 'object') {
    // listen(options[, cb]); a unix socket path or a handle is left alone.
    if (first.path === undefined && first.handle === undefined && first._handle === undefined && isWildcard(first.host)) {
      args[0] = { ...first, host: '127.0.0.1' };
    }
  } else if (typeof first !== 'string' || /^\d+$/.test(first)) {
    // listen([port[, host[, backlog]]][, cb]): insert or replace the host.
    if (args.length === 0 || typeof first === 'function') args.unshift(0);
    if (typeof args[1] === 'string') {
      if (isWildcard(args[1])) args[1] = '127.0.0.1';
    } else {
      args.splice(1, 0, '127.0.0.1');
    }
  }
  return listen.apply(this, args);
};
