import KeyvRedis from '@keyv/redis';
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis';
import { Cacheable, createKeyv as createCacheableMemory } from 'cacheable';
import { createCache as createCacheManager } from 'cache-manager';
import { Redis } from 'ioredis';
import { Keyv } from 'keyv';
import { LRUCache } from 'lru-cache';
import { createClient } from 'redis';
import { type Cache, createCache, createIoredisDriver } from './larder.js';
import { sleep, withTimeout } from './workload.js';

/**
 * Every cache measured, behind one getOrSet-shaped interface. Peers run with their documented
 * defaults, except where a default would make the comparison meaningless (noted per factory).
 */
export const SUBJECTS = {
  'larder-hybrid': 'Larder (memory+Redis)',
  'larder-redis': 'Larder (Redis only)',
  'larder-redis-io': 'Larder (Redis only, ioredis driver)',
  'larder-memory': 'Larder (memory only)',
  'bento-hybrid': 'BentoCache (memory+Redis)',
  'bento-redis': 'BentoCache (Redis only)',
  'bento-memory': 'BentoCache (memory only)',
  'cacheable-hybrid': 'cacheable (memory+Keyv Redis)',
  'cacheable-redis': 'cacheable (Keyv Redis only)',
  'cacheable-memory': 'cacheable (memory only)',
  'cache-manager': 'cache-manager 7 (Keyv Redis)',
  ioredis: 'raw ioredis GET/SET',
  'node-redis': 'raw node-redis GET/SET',
  'lru-awaited': 'lru-cache get, awaited',
} as const;

export type SubjectId = keyof typeof SUBJECTS;
export type Loader = () => unknown;
export type BatchLoader = (keys: string[]) => unknown[] | Promise<unknown[]>;

export type CacheSubject = {
  id: SubjectId;
  name: string;
  memory: boolean;
  redis: boolean;
  getOrSet(key: string, loader: Loader, ttlMs: number): Promise<unknown>;
  /** One batch round trip where the subject has a batch get (misses loaded in one call, written in one batch). */
  getOrSetMany?: (keys: string[], loader: BatchLoader, ttlMs: number) => Promise<unknown[]>;
  /** Resolves once the subject can use Redis (bounded by the caller). */
  ready(): Promise<void>;
  close(): Promise<void>;
  /** The Larder cache, for its stats. */
  larder?: Cache;
};

export type SubjectOptions = {
  url: string;
  /** Unique per instance: every Redis key of the subject starts with `${tag}:`. */
  tag: string;
  /** Larder: `redis.distributedLock` (cross-process single flight). */
  distributedLock?: boolean;
  /** Memory tier capacity (entries; default 10,000). */
  maxEntries?: number;
  /** Memory tier capacity (bytes; default 256 MiB, above every scenario's working set). */
  maxBytes?: number;
};

const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;

export function createSubject(id: SubjectId, options: SubjectOptions): CacheSubject {
  const base = { id, name: SUBJECTS[id] };
  switch (id) {
    case 'larder-hybrid':
    case 'larder-redis':
    case 'larder-redis-io':
    case 'larder-memory':
      return { ...base, ...larder(id, options) };
    case 'bento-hybrid':
    case 'bento-redis':
    case 'bento-memory':
      return { ...base, ...bento(id, options) };
    case 'cacheable-hybrid':
    case 'cacheable-redis':
    case 'cacheable-memory':
      return { ...base, ...cacheable(id, options) };
    case 'cache-manager':
      return { ...base, ...cacheManager(options) };
    case 'ioredis':
      return { ...base, ...rawIoredis(options) };
    case 'node-redis':
      return { ...base, ...rawNodeRedis(options) };
    case 'lru-awaited':
      return { ...base, ...lruAwaited(options) };
  }
}

type Parts = Omit<CacheSubject, 'id' | 'name'>;

function larder(
  id: 'larder-hybrid' | 'larder-redis' | 'larder-redis-io' | 'larder-memory',
  o: SubjectOptions,
): Parts {
  const redis = id !== 'larder-memory';
  const memory = id === 'larder-hybrid' || id === 'larder-memory';
  const distributedLock = o.distributedLock ? {} : false;
  const cache = createCache({
    prefix: o.tag,
    memory: memory
      ? { maxEntries: o.maxEntries ?? 10_000, maxBytes: o.maxBytes ?? DEFAULT_MAX_BYTES }
      : false,
    redis: !redis
      ? false
      : id === 'larder-redis-io'
        ? { driver: createIoredisDriver({ url: o.url }), distributedLock }
        : { url: o.url, distributedLock },
  });
  return {
    memory,
    redis,
    larder: cache,
    getOrSet: (key, loader, ttl) => cache.getOrSet(key, loader, { ttl }),
    getOrSetMany: (keys, loader, ttl) => cache.getOrSetMany(keys, async (k) => loader(k), { ttl }),
    ready: async () => {
      if (!redis) return;
      while ((await cache.health()).status !== 'ok') await sleep(20);
    },
    close: () => cache.close(),
  };
}

/**
 * BentoCache on ioredis (its Redis driver and bus need ioredis; see BENCHMARKS.md for the v5/v6
 * note: connections use `protocol: 2`, the v5 wire protocol). The memory driver's `maxItems`
 * defaults to 1,000: raised to hold the warm keys.
 */
function bento(id: 'bento-hybrid' | 'bento-redis' | 'bento-memory', o: SubjectOptions): Parts {
  const memory = id !== 'bento-redis';
  const redis = id !== 'bento-memory';
  const { hostname, port } = new URL(o.url);
  const connection = { host: hostname, port: Number(port), protocol: 2 as const };
  const io = redis ? new Redis({ ...connection }) : undefined;
  io?.on('error', () => undefined); // ioredis reconnects by itself; an unhandled 'error' would crash the bench
  let store = bentostore();
  if (memory) {
    store = store.useL1Layer(
      memoryDriver({ maxItems: o.maxEntries ?? 10_000, maxSize: o.maxBytes ?? DEFAULT_MAX_BYTES }),
    );
  }
  if (io !== undefined) store = store.useL2Layer(redisDriver({ connection: io }));
  if (memory && redis) store = store.useBus(redisBusDriver({ connection }));
  const cache = new BentoCache({ default: 'main', prefix: o.tag, stores: { main: store } });
  return {
    memory,
    redis,
    getOrSet: (key, loader, ttl) => cache.getOrSet({ key, factory: loader, ttl }),
    ready: async () => {
      if (io !== undefined) await io.ping();
    },
    close: async () => {
      // disconnect() waits for QUIT replies: it never resolves while Redis is unreachable.
      await withTimeout(cache.disconnect(), 2000).catch(() => undefined);
      io?.disconnect();
    },
  };
}

/**
 * cacheable with its in-memory primary (bounded to `maxEntries`, as the others) and @keyv/redis as
 * secondary, or @keyv/redis as its only store.
 */
function cacheable(
  id: 'cacheable-hybrid' | 'cacheable-redis' | 'cacheable-memory',
  o: SubjectOptions,
): Parts {
  const keyvRedis = id === 'cacheable-memory' ? undefined : new KeyvRedis(o.url);
  keyvRedis?.on('error', () => undefined);
  const memory = createCacheableMemory({ lruSize: o.maxEntries ?? 10_000 });
  const cache = new Cacheable({
    primary: id === 'cacheable-redis' ? keyvRedis : memory,
    secondary: id === 'cacheable-hybrid' ? keyvRedis : undefined,
    namespace: o.tag,
  });
  cache.on('error', () => undefined);
  const getOrSetMany = async (keys: string[], loader: BatchLoader, ttl: number) => {
    const found = await cache.getMany<unknown>(keys);
    const missing = keys.filter((_, i) => found[i] === undefined);
    if (missing.length === 0) return found;
    const loaded = await loader(missing);
    await cache.setMany(missing.map((key, i) => ({ key, value: loaded[i], ttl })));
    let j = 0;
    return found.map((v) => (v === undefined ? loaded[j++] : v));
  };
  return {
    memory: id !== 'cacheable-redis',
    redis: keyvRedis !== undefined,
    getOrSet: (key, loader, ttl) => cache.getOrSet(key, async () => loader(), { ttl }),
    getOrSetMany,
    ready: async () => {
      await keyvRedis?.getClient();
    },
    close: () => withTimeout(cache.disconnect(), 2000).catch(() => undefined),
  };
}

/** cache-manager 7 on one Keyv store backed by @keyv/redis (its documented Redis setup). */
function cacheManager(o: SubjectOptions): Parts {
  const keyvRedis = new KeyvRedis(o.url);
  keyvRedis.on('error', () => undefined);
  const keyv = new Keyv({ store: keyvRedis, namespace: o.tag });
  keyv.on('error', () => undefined);
  const cache = createCacheManager({ stores: [keyv] });
  const getOrSetMany = async (keys: string[], loader: BatchLoader, ttl: number) => {
    const found = await cache.mget<unknown>(keys);
    const missing = keys.filter((_, i) => found[i] === undefined);
    if (missing.length === 0) return found;
    const loaded = await loader(missing);
    await cache.mset(missing.map((key, i) => ({ key, value: loaded[i], ttl })));
    let j = 0;
    return found.map((v) => (v === undefined ? loaded[j++] : v));
  };
  return {
    memory: false,
    redis: true,
    getOrSet: (key, loader, ttl) => cache.wrap(key, loader, ttl),
    getOrSetMany,
    ready: async () => {
      await keyvRedis.getClient();
    },
    close: async () => {
      await withTimeout(cache.disconnect(), 2000).catch(() => undefined);
    },
  };
}

/** The floor: GET + JSON.parse, on a miss the loader then SET + JSON.stringify with PX. No single flight. */
function rawIoredis(o: SubjectOptions): Parts {
  const io = new Redis(o.url, { lazyConnect: true });
  io.on('error', () => undefined);
  const connected = io.connect().catch(() => undefined);
  const prefix = `${o.tag}:`;
  return {
    memory: false,
    redis: true,
    getOrSet: async (key, loader, ttl) => {
      const hit = await io.get(prefix + key);
      if (hit !== null) return JSON.parse(hit);
      const loaded = await loader();
      await io.set(prefix + key, JSON.stringify(loaded), 'PX', ttl);
      return loaded;
    },
    getOrSetMany: async (keys, loader, ttl) => {
      const hits = await io.mget(keys.map((k) => prefix + k));
      const missing = keys.filter((_, i) => hits[i] === null);
      const loaded = missing.length === 0 ? [] : await loader(missing);
      if (missing.length > 0) {
        const pipeline = io.pipeline();
        missing.forEach((key, i) => pipeline.set(prefix + key, JSON.stringify(loaded[i]), 'PX', ttl));
        await pipeline.exec();
      }
      let j = 0;
      return hits.map((raw) => (raw === null ? loaded[j++] : (JSON.parse(raw) as unknown)));
    },
    ready: async () => {
      await connected;
      await io.ping();
    },
    close: async () => {
      io.disconnect();
    },
  };
}

/** As {@link rawIoredis}, on node-redis with its defaults (offline queue, 5 s command timeout). */
function rawNodeRedis(o: SubjectOptions): Parts {
  const client = createClient({ url: o.url });
  client.on('error', () => undefined);
  const connected = client.connect().catch(() => undefined);
  const prefix = `${o.tag}:`;
  return {
    memory: false,
    redis: true,
    getOrSet: async (key, loader, ttl) => {
      const hit = await client.get(prefix + key);
      if (hit !== null) return JSON.parse(hit);
      const loaded = await loader();
      await client.set(prefix + key, JSON.stringify(loaded), { expiration: { type: 'PX', value: ttl } });
      return loaded;
    },
    ready: async () => {
      await connected;
      await client.ping();
    },
    close: async () => {
      client.destroy();
    },
  };
}

/** The limit of a Promise-returning memory hit: lru-cache `get` in an async function (fills on a miss). */
function lruAwaited(o: SubjectOptions): Parts {
  const lru = new LRUCache<string, object>({ max: o.maxEntries ?? 10_000 });
  return {
    memory: true,
    redis: false,
    getOrSet: async (key, loader, ttl) => {
      const hit = lru.get(key);
      if (hit !== undefined) return hit;
      const loaded = (await loader()) as object;
      lru.set(key, loaded, { ttl });
      return loaded;
    },
    ready: async () => undefined,
    close: async () => lru.clear(),
  };
}
