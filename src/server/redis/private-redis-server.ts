import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, connect, createServer } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../../index.js';

/** A `redis-server` the service started for itself, on loopback, with its files in the data folder. */
export type PrivateRedisServer = {
  /** `redis://127.0.0.1:<port>`: no password, reachable from this machine only. */
  readonly url: string;
  readonly port: number;
  /** Folder of its dump file, pid file and log. */
  readonly dir: string;
  /** Stops it (SIGTERM: it saves its dump first) and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
};

/** Options of {@link startPrivateRedis}. */
export type StartPrivateRedisOptions = {
  /** The service's data folder; the server's files go in `<dataDir>/redis`. */
  dataDir: string;
  logger: Logger;
  /** The binary to run. @default 'redis-server' (looked up on PATH) */
  binary?: string;
  /** Longest wait for the server to answer PING. @default 5000 */
  startTimeoutMs?: number;
};

/** Result of {@link startPrivateRedis} when no server could be started. */
export type PrivateRedisUnavailable = { readonly started: false; readonly reason: string };

const PID_FILE = 'redis-server.pid';
/** File in `<dataDir>/redis` holding the running server's URL; the `larder` CLI reads it. */
export const URL_FILE = 'redis-server.url';
const LOG_FILE = 'redis-server.log';
const PORT_ATTEMPTS = 3;

/**
 * Starts a private `redis-server` for a service that has no Redis configured: loopback only, a free
 * port, `protected-mode`, its dump in `<dataDir>/redis` (saved every minute when something changed
 * and on stop), `maxmemory 256mb` with `volatile-lru` — cache entries all have a TTL and are evicted
 * first, while job queue keys (no TTL) are never evicted. A server left behind by a service that was
 * killed is stopped first (its pid is kept in the folder).
 *
 * Resolves `{ started: false, reason }` when the binary is not on PATH or does not start, so that
 * the caller can run memory-only and say why; never throws for that.
 */
export async function startPrivateRedis(
  options: StartPrivateRedisOptions,
): Promise<PrivateRedisServer | PrivateRedisUnavailable> {
  const dir = join(options.dataDir, 'redis');
  const binary = options.binary ?? 'redis-server';
  await mkdir(dir, { recursive: true });
  await stopLeftover(dir, options.logger);

  let lastError = '';
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await freePort();
    // Its output goes to its log file in `dir`.
    const child = spawn(binary, serverArgs(port, dir), { stdio: 'ignore' });
    const spawnError = once(child, 'error').then(([error]) => error as NodeJS.ErrnoException);
    const outcome = await Promise.race([
      spawnError,
      waitForPing(port, child, options.startTimeoutMs ?? 5000),
    ]);
    if (outcome instanceof Error) {
      if (outcome.code === 'ENOENT') {
        return { started: false, reason: `${binary} is not on PATH` };
      }
      return { started: false, reason: `${binary} could not be run: ${outcome.message}` };
    }
    if (outcome === 'ready') {
      await writeFile(join(dir, PID_FILE), `${child.pid}\n`);
      await writeFile(join(dir, URL_FILE), `redis://127.0.0.1:${port}\n`);
      return running(child, port, dir, options.logger);
    }
    child.kill('SIGKILL');
    lastError = `${outcome}; ${await lastLogLine(dir)}`;
  }
  return { started: false, reason: `${binary} did not start: ${lastError}` };
}

async function lastLogLine(dir: string): Promise<string> {
  try {
    const log = await readFile(join(dir, LOG_FILE), 'utf8');
    return log.trim().split('\n').at(-1) ?? '(empty log)';
  } catch {
    return '(no log)';
  }
}

function serverArgs(port: number, dir: string): string[] {
  // prettier-ignore
  return [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--protected-mode', 'yes',
    '--dir', dir,
    '--dbfilename', 'dump.rdb',
    '--save', '60 1',
    '--appendonly', 'no',
    '--maxmemory', '256mb',
    '--maxmemory-policy', 'volatile-lru',
    '--logfile', join(dir, LOG_FILE),
  ];
}

function running(child: ChildProcess, port: number, dir: string, logger: Logger): PrivateRedisServer {
  const exited = once(child, 'exit');
  let stopping = false;
  child.once('exit', (code, signal) => {
    if (!stopping) {
      logger.error(
        { code, signal, port },
        `private redis-server exited unexpectedly; the cache serves from memory (see ${join(dir, LOG_FILE)})`,
      );
    }
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        stopping = true;
        child.kill('SIGTERM');
        await exited;
      }
      await rm(join(dir, PID_FILE), { force: true });
      await rm(join(dir, URL_FILE), { force: true });
    },
  };
}

/** Stops a server whose pid file outlived its service (the service was SIGKILLed). */
async function stopLeftover(dir: string, logger: Logger): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(join(dir, PID_FILE), 'utf8')).trim());
  } catch {
    return;
  }
  if (Number.isSafeInteger(pid) && pid > 1 && (await isRedisServer(pid))) {
    logger.warn({ pid }, 'stopping a private redis-server left behind by an earlier run');
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && (await isRedisServer(pid))) await sleep(50);
  }
  await rm(join(dir, PID_FILE), { force: true });
}

async function isRedisServer(pid: number): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('redis-server');
  } catch {
    return false; // gone, or not Linux (then the pid is left alone)
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

async function waitForPing(port: number, child: ChildProcess, timeoutMs: number): Promise<'ready' | string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return `exited with code ${child.exitCode}`;
    if (await answersPing(port)) return 'ready';
    await sleep(20);
  }
  return `no PING reply on 127.0.0.1:${port} within ${timeoutMs} ms`;
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data: Buffer) => done(data.toString().startsWith('+PONG')));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
