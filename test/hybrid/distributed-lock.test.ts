import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { useRedisSuite } from '../support/suite.js';

const suite = useRedisSuite();
const WORKER = fileURLToPath(new URL('../fixtures/lock-worker.ts', import.meta.url));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

type Report = { loaderCalls: number; values: string[]; errors: number; ms: number };

/** A worker process with its stdout lines as an async queue. */
function worker(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
    env: { ...process.env, REDIS_URL: suite.server.url, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const waiting: Array<(line: string) => void> = [];
  const buffered: string[] = [];
  lines.on('line', (line) => {
    const next = waiting.shift();
    if (next) next(line);
    else buffered.push(line);
  });
  const nextLine = () =>
    new Promise<string>((resolve) => {
      const line = buffered.shift();
      if (line !== undefined) resolve(line);
      else waiting.push(resolve);
    });
  return {
    child,
    async expect(wanted: string) {
      for (;;) if ((await nextLine()) === wanted) return;
    },
    async report(): Promise<Report> {
      for (;;) {
        const line = await nextLine();
        if (line.startsWith('{')) return JSON.parse(line) as Report;
      }
    },
    go() {
      child.stdin?.write('go\n');
    },
  };
}

describe('distributed stampede protection', () => {
  it('4 processes x 250 concurrent getOrSet on one cold key: exactly one loader call', async () => {
    const workers = Array.from({ length: 4 }, () =>
      worker({ KEY: 'cold', CONCURRENCY: '250', LOADER_MS: '100' }),
    );
    await Promise.all(workers.map((w) => w.expect('ready')));
    const started = performance.now();
    for (const w of workers) w.go();
    const reports = await Promise.all(workers.map((w) => w.report()));
    const wall = performance.now() - started;
    const loaderCalls = reports.reduce((n, r) => n + r.loaderCalls, 0);
    const values = new Set(reports.flatMap((r) => r.values));
    console.info(
      `[distributed lock] 4 processes x 250 calls: loader calls=${loaderCalls}, distinct values=${values.size}, errors=${reports.reduce((n, r) => n + r.errors, 0)}, wall=${wall.toFixed(0)} ms`,
    );
    expect(loaderCalls).toBe(1);
    expect(values.size).toBe(1);
    expect(reports.every((r) => r.errors === 0)).toBe(true);
  }, 30_000);

  it('the lock holder killed mid-load: another process produces the value within the lock TTL plus one load', async () => {
    const lockTtl = 600;
    const loaderMs = 200;
    const env = {
      KEY: 'orphan',
      CONCURRENCY: '20',
      LOADER_MS: String(loaderMs),
      LOCK_TTL_MS: String(lockTtl),
    };
    const holder = worker({ ...env, LOADER_MS: '5000' });
    const waiter = worker(env);
    await Promise.all([holder.expect('ready'), waiter.expect('ready')]);
    holder.go();
    await holder.expect('loading'); // it holds the lock now
    waiter.go();
    await new Promise((r) => setTimeout(r, 50)); // the waiter finds the lock taken
    const started = performance.now();
    holder.child.kill('SIGKILL');
    const report = await waiter.report();
    const took = performance.now() - started;
    console.info(
      `[distributed lock] holder killed: value after ${took.toFixed(0)} ms (lock TTL ${lockTtl} + load ${loaderMs})`,
    );
    expect(report.errors).toBe(0);
    expect(report.loaderCalls).toBe(1);
    expect(report.values).toEqual([expect.stringMatching(/^value from /)]);
    expect(took).toBeGreaterThan(loaderMs); // it did wait for the dead holder's lock
    expect(took).toBeLessThan(lockTtl + loaderMs + 400);
  }, 30_000);
});
