// Child processes for a scenario: start on free 127.0.0.1 ports, wait until ready, stop by PID.
import { spawn } from 'node:child_process';
import { appendFileSync, createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const E2E_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const LOG_ROOT = process.env.E2E_LOG_DIR ?? join(E2E_DIR, '.logs');

/** A port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`'s value, or undefined once `ms` have passed (the timer never keeps the process alive). */
export function within(promise, ms) {
  let timer;
  const expiry = new Promise((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([promise, expiry]).finally(() => clearTimeout(timer));
}

const running = new Set();
// A crashed or interrupted test run must not leave servers behind.
process.on('exit', () => {
  for (const child of running) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/**
 * Spawns `command args` with stdout+stderr appended to `<logDir>/<name>.log` and kept in memory.
 * Returns { name, pid, logFile, output(), waitForOutput(re), stop() }.
 */
export function start(name, command, args, { env = {}, logDir, cwd = E2E_DIR, stdin = 'ignore' } = {}) {
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: [stdin, 'pipe', 'pipe'],
  });
  running.add(child);
  // e2e/run kills whatever is still listed here once the scenario is over (a hung run's leftovers).
  if (child.pid) appendFileSync(join(logDir, 'pids'), `${child.pid} ${[command, ...args].join(' ')}\n`);
  let output = '';
  const waiters = new Set();
  const onData = (chunk) => {
    output += chunk.toString();
    log.write(chunk);
    for (const check of waiters) check();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  // Set synchronously in the 'exit' handler so that a waiter checked right then sees it (a `.then`
  // would run later, and a child that died at start-up would look alive until the timeout).
  let exitStatus;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      exitStatus = { code, signal };
      resolve(exitStatus);
      for (const check of waiters) check();
    });
  });
  // Output can still arrive after 'exit'; once the pipes are closed it is complete.
  child.on('close', () => {
    for (const check of waiters) check();
  });

  return {
    name,
    pid: child.pid,
    child,
    logFile,
    exited,
    output: () => output,
    /** Resolves with the match once `re` appears in the output; rejects if the process exits first. */
    waitForOutput(re, timeoutMs = 15000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`${name}: no ${re} within ${timeoutMs} ms; output:\n${output.slice(-2000)}`)), timeoutMs);
        const check = () => {
          const match = output.match(re);
          if (match) finish(null, match);
          else if (exitStatus) finish(new Error(`${name} exited (${JSON.stringify(exitStatus)}) before ${re}; output:\n${output.slice(-2000)}`));
        };
        function finish(err, match) {
          clearTimeout(timer);
          waiters.delete(check);
          if (err) reject(err);
          else resolve(match);
        }
        waiters.add(check);
        check();
      });
    },
    /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
    async stop(graceMs = 3000) {
      if (exitStatus) return exitStatus;
      try {
        process.kill(child.pid, 'SIGTERM');
      } catch {
        return exited;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, graceMs);
      const status = await exited;
      clearTimeout(timer);
      log.end();
      return status;
    },
  };
}

/** Polls `url` until it answers `status` (default 200). */
export async function waitForHttp(url, { status = 200, timeoutMs = 15000, proc } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
      if (res.status === status) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err.cause?.code ?? err.message;
    }
    if (proc && (await Promise.race([proc.exited, sleep(0).then(() => null)]))) {
      throw new Error(`${proc.name} exited before ${url} answered ${status}; output:\n${proc.output().slice(-2000)}`);
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms (last: ${last})`);
}

/** Stops every process in `procs` (in reverse start order), ignoring the ones never started. */
export async function stopAll(procs) {
  for (const proc of [...procs].reverse()) {
    if (proc) await proc.stop();
  }
}
