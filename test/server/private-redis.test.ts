import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startPrivateRedis } from '../../src/server/redis/private-redis-server.js';
import { freePort } from '../support/redis-server.js';

const silent = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };
const dirs: string[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  // A service killed above (a failed test) leaves its private redis-server running: stop it too.
  for (const dir of dirs) {
    const pid = Number(await readFile(join(dir, 'redis', 'redis-server.pid'), 'utf8').catch(() => ''));
    if (pid > 1 && alive(pid)) process.kill(pid, 'SIGKILL');
  }
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'larder-private-redis-'));
  dirs.push(dir);
  return dir;
}

/** Sends one inline command over a raw socket; resolves the reply, or `undefined` if nothing listens. */
function raw(port: number, command: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.on('error', () => resolve(undefined));
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (data: Buffer) => {
      socket.destroy();
      resolve(data.toString());
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('startPrivateRedis', () => {
  it('starts a loopback server with its files in <dataDir>/redis, and saves its data on stop', async () => {
    const dataDir = await tempDir();
    const server = await startPrivateRedis({ dataDir, logger: silent });
    if (!('url' in server)) throw new Error(server.reason);
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(await raw(server.port, 'PING')).toBe('+PONG\r\n');
    expect(await raw(server.port, 'CONFIG GET maxmemory-policy')).toContain('volatile-lru');
    await raw(server.port, 'SET kept yes');
    const pid = Number(await readFile(join(server.dir, 'redis-server.pid'), 'utf8'));
    expect(alive(pid)).toBe(true);

    await server.stop();
    expect(alive(pid)).toBe(false);
    expect(await raw(server.port, 'PING')).toBeUndefined();
    expect(existsSync(join(dataDir, 'redis', 'dump.rdb'))).toBe(true);
    expect(existsSync(join(dataDir, 'redis', 'redis-server.pid'))).toBe(false);
  });

  it('stops a server left behind by a killed service before starting its own', async () => {
    const dataDir = await tempDir();
    const first = await startPrivateRedis({ dataDir, logger: silent });
    if (!('url' in first)) throw new Error(first.reason);
    const leftover = Number(await readFile(join(first.dir, 'redis-server.pid'), 'utf8'));

    const second = await startPrivateRedis({ dataDir, logger: silent }); // first.stop() never called
    if (!('url' in second)) throw new Error(second.reason);
    expect(alive(leftover)).toBe(false);
    expect(await raw(second.port, 'PING')).toBe('+PONG\r\n');
    await second.stop();
  });

  it('says why when the binary is missing, without throwing', async () => {
    const result = await startPrivateRedis({
      dataDir: await tempDir(),
      logger: silent,
      binary: 'redis-server-that-does-not-exist',
    });
    expect(result).toEqual({ started: false, reason: 'redis-server-that-does-not-exist is not on PATH' });
  });
});

type Started = { child: ChildProcess; port: number; output: () => string };

/** Runs the service's entry point (`src/server/main.ts`) in its own process, as `npm start` does. */
async function startService(env: NodeJS.ProcessEnv): Promise<Started> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main.ts'], {
    env: { ...env, PORT: String(port), SEED_DEMO_DATA: 'false', LARDER_ENV: 'test' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (output += c));
  const deadline = Date.now() + 60_000;
  while (!output.includes('Server listening')) {
    if (child.exitCode !== null) throw new Error(`service exited early:\n${output}`);
    if (Date.now() > deadline) throw new Error(`service did not listen within 60 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, port, output: () => output };
}

async function health(port: number): Promise<{ status: string; checks: { redis: { mode: string } } }> {
  const res = await fetch(`http://127.0.0.1:${port}/api/health`);
  return (await res.json()) as { status: string; checks: { redis: { mode: string } } };
}

describe('the service with nothing configured (npm start)', () => {
  it('starts a private redis-server, reports it in health, prints a generated admin token, stops both on SIGTERM', async () => {
    const dataDir = await tempDir();
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, DATA_DIR: dataDir };
    const service = await startService(env);
    const reply = await health(service.port);
    expect(reply.checks.redis.mode).toBe('private');
    expect(reply.status).toBe('ok');

    const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
    expect(service.output()).toContain(`admin token generated (LARDER_ADMIN_TOKEN was unset): ${token}`);
    const redisPid = Number(await readFile(join(dataDir, 'redis', 'redis-server.pid'), 'utf8'));
    expect(alive(redisPid)).toBe(true);

    service.child.kill('SIGTERM');
    const [code] = await once(service.child, 'exit');
    expect(code).toBe(0);
    expect(alive(redisPid)).toBe(false);
  }, 120_000);

  it('runs memory-only and says why when redis-server is not on PATH', async () => {
    const dataDir = await tempDir();
    // An empty PATH folder: no redis-server (node itself is started by its absolute path).
    const service = await startService({ PATH: await tempDir(), DATA_DIR: dataDir });
    const reply = await health(service.port);
    expect(reply.checks.redis.mode).toBe('not-configured');
    expect(reply.status).toBe('degraded');
    expect(service.output()).toContain('no private redis-server: redis-server is not on PATH');
    service.child.kill('SIGTERM');
    expect((await once(service.child, 'exit'))[0]).toBe(0);
  }, 120_000);
});
