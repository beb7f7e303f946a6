import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { createClient } from 'redis';
import { type Cache, createCache } from '../src/index.js';
import type { Op } from './harness.js';

/** Something measured: `op` is one call. `prepare` runs before each warm-up (e.g. re-warming keys). */
export type Subject = {
  name: string;
  op: Op;
  /** A synchronous reference: called in a plain loop, at concurrency 1 only. */
  sync?: boolean;
  prepare?: () => Promise<void>;
};

export type Scenario = {
  id: string;
  title: string;
  subjects: Subject[];
  /** Ratio rows: [Larder subject, reference subject]. */
  ratios: Array<[string, string]>;
};

/** Sanity counters: Redis failures Larder absorbed, and misses of the Redis-tier-hit cache (expected 0). */
export type LarderCounters = {
  fallbacks: number;
  timeouts: number;
  redisErrors: number;
  redisTierMisses: number;
};

export const KEY_COUNT = 10_000;
export const VALUE_BYTES = 200;
/** TTL of the miss + set entries: short, so that Redis expires the (never reused) keys during the run. */
const MISS_TTL_MS = 5_000;
const HIT_TTL_MS = 3_600_000;

/** A JSON object whose `JSON.stringify` is exactly `bytes` long. */
export function makeValue(bytes: number): Record<string, unknown> {
  const value = { id: 123456, name: 'Ada Lovelace', email: 'ada@example.com', active: true, bio: '' };
  value.bio = 'x'.repeat(bytes - JSON.stringify(value).length);
  return value;
}

/** Key indices in [0, n) drawn from a Zipf distribution (exponent `s`), seeded: hot keys first. */
export function zipfIndices(n: number, length: number, s = 0.99, seed = 42): Uint32Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1) ** s;
    cdf[i] = sum;
  }
  let state = seed >>> 0;
  const random = () => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Uint32Array(length);
  for (let j = 0; j < length; j++) {
    const target = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cdf[mid] as number) < target) lo = mid + 1;
      else hi = mid;
    }
    out[j] = lo;
  }
  return out;
}

/** Runs `fn` over `items`, at most `limit` at a time (Larder caps pending Redis commands). */
async function inBatches<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>) {
  for (let i = 0; i < items.length; i += limit) await Promise.all(items.slice(i, i + limit).map(fn));
}

async function waitForRedis(cache: Cache): Promise<void> {
  const deadline = Date.now() + 5000;
  while ((await cache.health()).status !== 'ok') {
    if (Date.now() > deadline) throw new Error('Larder did not reach Redis within 5 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A cycling reader of a precomputed index array (length a power of 2), mapped to key strings. */
function keyReader(keys: readonly string[], indices: Uint32Array): () => string {
  const mask = indices.length - 1;
  let i = 0;
  return () => keys[indices[i++ & mask] as number] as string;
}

/** Creates every client and cache, fills the keys, and returns the scenarios and a closer. */
export async function createScenarios(url: string): Promise<{
  scenarios: Scenario[];
  larderCounters: () => LarderCounters;
  close: () => Promise<void>;
}> {
  const value = makeValue(VALUE_BYTES);
  const loader = () => value;
  const ids = Array.from({ length: KEY_COUNT }, (_, i) => i);
  const zipf = zipfIndices(KEY_COUNT, 1 << 20);

  const larder = createCache({ prefix: 'bench', redis: { url } });
  const larderRedisOnly = createCache({ prefix: 'bench', redis: { url }, memory: false });
  const io = new Redis(url, { lazyConnect: true });
  const nodeRedis = createClient({ url });
  nodeRedis.on('error', (error: unknown) => console.error('node-redis:', error));
  await Promise.all([io.connect(), nodeRedis.connect(), waitForRedis(larder), waitForRedis(larderRedisOnly)]);

  // 1. Memory-tier hit: 10k warm keys, Zipf access.
  const memKeys = ids.map((i) => `m${i}`);
  const lru = new LRUCache<string, object>({ max: KEY_COUNT });
  for (const key of memKeys) lru.set(key, JSON.parse(JSON.stringify(value)) as object);
  const lruGetAsync = async (key: string) => lru.get(key);
  const nextMemKey = [keyReader(memKeys, zipf), keyReader(memKeys, zipf), keyReader(memKeys, zipf)] as const;
  const memoryHit: Scenario = {
    id: 'memory-hit',
    title: 'memory-tier hit (10k warm keys, Zipf)',
    subjects: [
      {
        name: 'Larder getOrSet (memory+Redis)',
        op: () => larder.getOrSet(nextMemKey[0](), loader),
        // Memory entries live at most memory.maxTtl (1 min): re-warm all keys before each run.
        prepare: () => inBatches(memKeys, 256, (key) => larder.getOrSet(key, loader)),
      },
      { name: 'lru-cache get, awaited', op: () => lruGetAsync(nextMemKey[1]()) },
      { name: 'lru-cache get, sync', op: () => lru.get(nextMemKey[2]()), sync: true },
    ],
    ratios: [
      ['Larder getOrSet (memory+Redis)', 'lru-cache get, awaited'],
      ['Larder getOrSet (memory+Redis)', 'lru-cache get, sync'],
    ],
  };

  // 2. Redis-tier hit: the same keys and access pattern, no memory tier.
  const redisKeys = ids.map((i) => `r${i}`);
  const rawRedisKeys = redisKeys.map((key) => `raw:${key}`);
  const json = JSON.stringify(value);
  await inBatches(redisKeys, 256, (key) => larderRedisOnly.set(key, value, { ttl: HIT_TTL_MS }));
  await inBatches(rawRedisKeys, 256, (key) => io.set(key, json, 'PX', HIT_TTL_MS));
  const nextRedisKey = keyReader(redisKeys, zipf);
  const nextIoKey = keyReader(rawRedisKeys, zipf);
  const nextNodeRedisKey = keyReader(rawRedisKeys, zipf);
  const parseHit = (raw: string | null): unknown => {
    if (raw === null) throw new Error('bench setup: expected a hit, got a miss');
    return JSON.parse(raw);
  };
  const redisHit: Scenario = {
    id: 'redis-hit',
    title: 'Redis-tier hit (10k keys, Zipf)',
    subjects: [
      { name: 'Larder getOrSet (memory: false)', op: () => larderRedisOnly.getOrSet(nextRedisKey(), loader) },
      { name: 'ioredis GET + JSON.parse', op: async () => parseHit(await io.get(nextIoKey())) },
      {
        name: 'node-redis GET + JSON.parse',
        op: async () => parseHit(await nodeRedis.get(nextNodeRedisKey())),
      },
    ],
    ratios: [
      ['Larder getOrSet (memory: false)', 'ioredis GET + JSON.parse'],
      ['Larder getOrSet (memory: false)', 'node-redis GET + JSON.parse'],
    ],
  };

  // 3. Miss + set: distinct, never-seen keys and an instant loader.
  const missOptions = { ttl: MISS_TTL_MS };
  let larderMiss = 0;
  let ioMiss = 0;
  let nodeRedisMiss = 0;
  const missSet: Scenario = {
    id: 'miss-set',
    title: 'miss + set, instant loader (distinct keys)',
    subjects: [
      {
        name: 'Larder getOrSet (memory+Redis)',
        op: () => larder.getOrSet(`x${larderMiss++}`, loader, missOptions),
      },
      {
        name: 'ioredis GET, SET PX',
        op: async () => {
          const key = `raw:x${ioMiss++}`;
          const hit = await io.get(key);
          if (hit !== null) return JSON.parse(hit);
          const loaded = loader();
          await io.set(key, JSON.stringify(loaded), 'PX', MISS_TTL_MS);
          return loaded;
        },
      },
      {
        name: 'node-redis GET, SET PX',
        op: async () => {
          const key = `raw:y${nodeRedisMiss++}`;
          const hit = await nodeRedis.get(key);
          if (hit !== null) return JSON.parse(hit);
          const loaded = loader();
          await nodeRedis.set(key, JSON.stringify(loaded), {
            expiration: { type: 'PX', value: MISS_TTL_MS },
          });
          return loaded;
        },
      },
    ],
    ratios: [
      ['Larder getOrSet (memory+Redis)', 'ioredis GET, SET PX'],
      ['Larder getOrSet (memory+Redis)', 'node-redis GET, SET PX'],
    ],
  };

  const larderCounters = () => {
    const sum = {
      fallbacks: 0,
      timeouts: 0,
      redisErrors: 0,
      redisTierMisses: larderRedisOnly.stats().totals.misses,
    };
    for (const cache of [larder, larderRedisOnly]) {
      const { totals } = cache.stats();
      sum.fallbacks += totals.fallbacks;
      sum.timeouts += totals.timeouts;
      sum.redisErrors += totals.redisErrors;
    }
    return sum;
  };
  const close = async () => {
    await Promise.all([larder.close(), larderRedisOnly.close(), io.quit(), nodeRedis.close()]);
  };
  return { scenarios: [memoryHit, redisHit, missSet], larderCounters, close };
}
