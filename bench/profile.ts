/**
 * CPU profile of one Larder hot path, for the "what limits it" notes of BENCHMARKS.md:
 *
 *   npm run build && node --import tsx bench/profile.ts <path> [concurrency] [seconds]
 *
 * Larder is profiled from dist/ (see bench/larder.ts), so build first. Paths: memory-hit,
 * redis-hit, redis-hit-io (ioredis driver), miss-set, miss-set-io, miss-set-redis (Redis only),
 * many-miss (getOrSetMany of 100 new keys), and for comparison raw-ioredis-hit and
 * raw-ioredis-miss. Spawns a private redis-server, runs the path with the inspector's sampling
 * profiler on, writes a .cpuprofile (open it in Chrome DevTools or speedscope for a flame graph)
 * and prints the functions with the most self time, grouped by file.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { timedRun } from './harness.js';
import { installCleanup, killEverything, startRedis, stopRedis } from './processes.js';
import { createSubject, type SubjectId } from './subjects.js';
import { inBatches, LONG_TTL_MS, makeValue, MISS_TTL_MS, SMALL_VALUE } from './workload.js';

type Node = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
};
type Profile = { nodes: Node[]; startTime: number; endTime: number };

const PATHS: Record<string, SubjectId> = {
  'memory-hit': 'larder-hybrid',
  'redis-hit': 'larder-redis',
  'redis-hit-io': 'larder-redis-io',
  'miss-set': 'larder-hybrid',
  'miss-set-io': 'larder-redis-io',
  'miss-set-redis': 'larder-redis',
  'many-miss': 'larder-redis',
  'raw-ioredis-hit': 'ioredis',
  'raw-ioredis-miss': 'ioredis',
};

const path = process.argv[2] ?? 'redis-hit';
const concurrency = Number(process.argv[3] ?? 1);
const seconds = Number(process.argv[4] ?? 5);
const id = PATHS[path];
if (id === undefined) throw new Error(`unknown path ${path}: one of ${Object.keys(PATHS).join(', ')}`);

installCleanup(120_000);
const server = await startRedis();
const subject = createSubject(id, { url: server.url, tag: 'profile' });
try {
  await subject.ready();
  const value = makeValue(SMALL_VALUE);
  const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
  await inBatches(keys, 100, (k) => subject.getOrSet(k, () => value, LONG_TTL_MS));
  let n = 0;
  const many = subject.getOrSetMany;
  const op =
    path.startsWith('miss-set') || path === 'raw-ioredis-miss'
      ? () => subject.getOrSet(`x${n++}`, () => value, MISS_TTL_MS)
      : path === 'many-miss' && many !== undefined
        ? () => {
            const batch = n++;
            const batchKeys = Array.from({ length: 100 }, (_, i) => `b${batch}-${i}`);
            return many(batchKeys, (missing) => missing.map(() => value), MISS_TTL_MS);
          }
        : () => subject.getOrSet(keys[n++ % keys.length] as string, () => value, LONG_TTL_MS);
  await timedRun(op, { concurrency, durationMs: 1000 }); // warm-up
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  const result = await timedRun(op, { concurrency, durationMs: seconds * 1000 });
  const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
  session.disconnect();
  const file = join(tmpdir(), `larder-${path}-${Date.now()}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  console.log(
    `${path} c=${concurrency}: ${Math.round(result.opsPerSec)} ops/s under the profiler; profile: ${file}\n`,
  );
  summarize(profile);
} finally {
  await subject.close();
  await stopRedis(server);
  killEverything();
}
process.exit(0);

function summarize(profile: Profile): void {
  const total = profile.nodes.reduce((n, node) => n + node.hitCount, 0);
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^file:\/\/.*?\/(node_modules|src|bench)\//, '$1/') || '(native)';
    const key = `${functionName || '(anonymous)'}  ${file}:${lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + node.hitCount);
    const area =
      /^(node_modules\/(?:@[^/]+\/)?[^/]+|src\/[^/]+|bench)/.exec(file)?.[1] ??
      (url === '' ? functionName : 'node:internal');
    byArea.set(area, (byArea.get(area) ?? 0) + node.hitCount);
  }
  const top = (map: Map<string, number>, count: number) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([k, v]) => `${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`)
      .join('\n');
  console.log(`self time by area:\n${top(byArea, 12)}\n\nself time by function:\n${top(byFunction, 25)}`);
}
