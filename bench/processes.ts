import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TestRedisServer } from '../test/support/redis-server.js';

/**
 * Everything the benchmark starts (redis-servers, worker processes) is registered here and killed
 * on exit, whatever the exit: normal end, thrown error, SIGINT/SIGTERM or the global deadline.
 */
const servers = new Set<TestRedisServer>();
const children = new Set<ChildProcess>();

export async function startRedis(): Promise<TestRedisServer> {
  const server = await TestRedisServer.start();
  servers.add(server);
  return server;
}

export async function stopRedis(server: TestRedisServer): Promise<void> {
  servers.delete(server);
  await server.stop();
}

/** Kills every registered process now (synchronous signals: safe in an 'exit' handler). */
export function killEverything(): void {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  // TestRedisServer.kill() sends SIGCONT/SIGKILL synchronously before its first await.
  for (const server of servers) void server.stop().catch(() => undefined);
  servers.clear();
}

let installed = false;

/** Kills everything on exit and signals; exits with an error after `deadlineMs` (a hung peer). */
export function installCleanup(deadlineMs: number): void {
  if (installed) return;
  installed = true;
  process.on('exit', killEverything);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      console.error(`\n${signal}: stopping every redis-server and worker started by the benchmark`);
      killEverything();
      process.exit(130);
    });
  }
  setTimeout(() => {
    console.error(`\nThe benchmark passed its ${deadlineMs / 1000} s deadline: stopping.`);
    killEverything();
    process.exit(2);
  }, deadlineMs).unref();
}

/** A `node --import tsx` child speaking JSON lines on stdin/stdout. */
export class Worker {
  readonly #child: ChildProcess;
  readonly #lines: Interface;
  readonly #queue: string[] = [];
  readonly #waiters: Array<(line: string) => void> = [];

  constructor(script: string, env: Record<string, string> = {}, execArgv: string[] = []) {
    const path = fileURLToPath(new URL(`./workers/${script}`, import.meta.url));
    this.#child = spawn(process.execPath, [...execArgv, '--import', 'tsx', path], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.add(this.#child);
    this.#child.once('exit', () => {
      children.delete(this.#child);
      for (const waiter of this.#waiters.splice(0)) waiter('{"exited":true}');
    });
    this.#lines = createInterface({ input: this.#child.stdout as NodeJS.ReadableStream });
    this.#lines.on('line', (line) => {
      const waiter = this.#waiters.shift();
      if (waiter !== undefined) waiter(line);
      else this.#queue.push(line);
    });
  }

  send(message: unknown): void {
    this.#child.stdin?.write(`${JSON.stringify(message)}\n`);
  }

  /** The next JSON line (`{ exited: true }` if the child died), or an error after `timeoutMs`. */
  next<T>(timeoutMs: number): Promise<T> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(JSON.parse(queued) as T);
    if (this.#child.exitCode !== null) return Promise.resolve({ exited: true } as T);
    return new Promise<T>((resolve, reject) => {
      const waiter = (line: string) => {
        clearTimeout(timer);
        resolve(JSON.parse(line) as T);
      };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error(`worker gave no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Asks politely, then SIGKILL after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = once(this.#child, 'exit');
    this.#child.stdin?.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    this.#lines.close();
  }
}

/**
 * Unhandled rejections and uncaught exceptions thrown by peers are counted (by the package in their
 * stack) instead of crashing the run, and so are the 'error' events ioredis prints because nobody
 * listens to them (by the Redis port they name). Scenarios read and reset the tally.
 */
const stray = new Map<string, number>();
const strayByPort = new Map<number, number>();
const portLabels = new Map<number, string>();

const IOREDIS_KEY = "ioredis 'error' events nobody listened to (printed by ioredis)";

export function installStrayErrorCounter(): void {
  const count = (error: unknown) => {
    const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(stack)?.[1] ?? 'unknown origin';
    const name = error instanceof Error ? error.name : typeof error;
    const key = `${pkg} (${name})`;
    if (!stray.has(key)) console.error(`stray error from ${key}: ${String(error).slice(0, 200)}`);
    stray.set(key, (stray.get(key) ?? 0) + 1);
  };
  process.on('unhandledRejection', count);
  process.on('uncaughtException', count);
  const print = console.error.bind(console);
  console.error = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].startsWith('[ioredis] Unhandled error event')) {
      const port = Number(/127\.0\.0\.1:(\d+)/.exec(String(args[1]))?.[1] ?? 0);
      strayByPort.set(port, (strayByPort.get(port) ?? 0) + 1);
      return;
    }
    print(...args);
  };
}

/** Names a Redis port for the leftover report (e.g. 'scenario 5, Redis down'). */
export function labelPort(port: number, label: string): void {
  portLabels.set(port, label);
}

/** The stray errors since the last call (those printed by ioredis: for `ports` only), e.g. `["bentocache (Error) ×3"]`. */
export function takeStrayErrors(ports: number[]): string[] {
  const out = [...stray].map(([key, n]) => `${key} ×${n}`);
  stray.clear();
  const printed = ports.reduce((n, port) => n + (strayByPort.get(port) ?? 0), 0);
  for (const port of ports) strayByPort.delete(port);
  if (printed > 0) out.push(`${IOREDIS_KEY} ×${printed}`);
  return out;
}

/**
 * What no scenario collected: ioredis 'error' events about the Redis of a finished scenario
 * (connections that outlived their close()), and unhandled rejections after the last collection.
 */
export function leftoverStrayErrors(): { printed: string[]; unhandled: string[] } {
  return {
    printed: [...strayByPort].map(([port, n]) => `${portLabels.get(port) ?? `port ${port}`}: ${n}`),
    unhandled: [...stray].map(([key, n]) => `${key} ×${n}`),
  };
}
