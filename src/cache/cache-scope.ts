import { describe, ErrorCode, LarderError } from '../errors.js';
import { escapeSegment } from '../keys/escape.js';
import type { Scope } from '../keys/scope.js';
import { type Duration, ttlOption } from '../options/duration.js';
import type { NamespaceCounters } from '../telemetry/stats.js';
import type { MemoryTier } from '../tiers/memory-tier.js';
import type { CacheCore, PreparedWrite } from './cache-core.js';
import {
  type Loader,
  type LoadRequest,
  type LoadSettings,
  loadThrough,
  refreshInBackground,
} from './load-flow.js';

export type { Loader } from './load-flow.js';

/** Options of {@link CacheScope.namespace}. */
export type NamespaceOptions = {
  /**
   * `false`: the namespace and its tenants never use the memory tier (ignored without Redis).
   * @default true
   */
  memory?: boolean;
};

/** Options of a write. */
export type SetOptions = {
  /** Time to live. @default the cache's `defaultTtl` */
  ttl?: Duration;
  /** Tags for {@link CacheScope.deleteByTag}, scoped like keys to this view. */
  tags?: readonly string[];
  /** How long past `ttl` the value may be served when a loader fails. @default the cache's `grace` */
  grace?: Duration;
};

/** Options of {@link CacheScope.getOrSet}; each defaults to the cache option of the same name. */
export type GetOrSetOptions = SetOptions & {
  /** TTL when the loader returns `null` or `undefined`; `0` does not cache "not found". */
  negativeTtl?: Duration;
  /** After a failed load answered with a stale value, how long before trying the loader again. */
  graceBackoff?: Duration;
  /** Loader timeouts: `soft` serves stale and lets the loader finish; `hard` gives up. */
  loaderTimeout?: { soft?: Duration; hard?: Duration };
  /** Refresh-ahead fraction of the TTL (0 < f < 1); `false` turns the cache's default off for this call. */
  refreshAhead?: number | false;
  /** Take the distributed lock on a miss (when the cache has `redis.distributedLock`). @default true */
  lock?: boolean;
};

/** One entry of {@link CacheScope.setMany}. */
export type SetManyEntry = { key: string; value: unknown } & SetOptions;

/**
 * A batch loader for {@link CacheScope.getOrSetMany}: given the keys that missed, returns their
 * values in the same order (an array) or by key (a `Map`); a missing or `null`/`undefined` value
 * is cached as "not found".
 */
export type BatchLoader<T> = (keys: string[]) => Promise<ReadonlyArray<T> | ReadonlyMap<string, T>>;

/**
 * A view of the cache bound to one scope: the root, a namespace, a tenant, or any nesting of them.
 * Keys given to a view are confined to its scope: no key, namespace or tenant string can reach
 * another scope's entries, and `clear()` / `deleteByTag()` affect this scope only (and, for
 * `clear()`, its sub-scopes).
 */
export class CacheScope {
  /** @internal */
  protected readonly core: CacheCore;
  /** @internal */
  protected readonly scope: Scope;
  readonly #counters: NamespaceCounters;
  readonly #dataPrefix: string;
  readonly #maxKeyLength: number;
  // Built Redis keys of this view by caller key, for keys that hit the memory tier: a hit then
  // hashes a string V8 has already flattened and hashed, instead of a fresh concatenation.
  // Bounded; emptied when full.
  readonly #builtKeys = new Map<string, string>();
  // The memory tier, unless this view's scope is kept out of it.
  readonly #memory: MemoryTier | undefined;

  /** @internal use `createCache()`, `namespace()` or `forTenant()`. */
  constructor(core: CacheCore, scope: Scope) {
    this.core = core;
    this.scope = scope;
    this.#memory = scope.memory || core.gateway === undefined ? core.memory : undefined;
    this.#counters = scope.chain.some((s) => s.segment?.kind === 'tenant')
      ? core.stats.forTenant(scope.namespacePath, scope.path)
      : core.stats.forNamespace(scope.namespacePath);
    this.#dataPrefix = scope.dataPrefix;
    this.#maxKeyLength = core.options.maxKeyLength;
  }

  /** This view's path, e.g. `kpi/@acme` (empty for the root). */
  get path(): string {
    return this.scope.path;
  }

  /**
   * A view of the namespace `name` inside this scope.
   * @param options.memory `false` keeps this namespace (and its tenants) out of the memory tier:
   * every read asks Redis, so a read on any instance right after a write sees it, without waiting
   * for the bus. For data read right after it changes on another instance (conversation context,
   * sessions); ignored on a cache without Redis, where memory is the only tier.
   * @throws LarderError `E_INVALID_NAMESPACE`
   * @example
   * const context = cache.namespace('conversations', { memory: false });
   */
  namespace(name: string, options?: NamespaceOptions): CacheScope {
    return new CacheScope(this.core, this.scope.child('namespace', name, options?.memory ?? true));
  }

  /** A view of tenant `id`'s data inside this scope. @throws LarderError `E_INVALID_TENANT` */
  forTenant(id: string): CacheScope {
    return new CacheScope(this.core, this.scope.child('tenant', id));
  }

  /**
   * Returns the cached value, or runs `loader`, caches its result and returns it. Concurrent calls
   * for one key in this process share one loader call (and, with `redis.distributedLock`, across
   * processes). Results `null`/`undefined` are cached for `negativeTtl`. Redis failures never
   * reach the caller: without Redis the loader's value is served and kept in memory. With `grace`,
   * a stale value is served when the loader fails or is slow.
   * @throws LarderError `E_LOADER_FAILED` (the loader's error is the `cause`), `E_LOADER_TIMEOUT`,
   * or an input error.
   */
  getOrSet<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<T> {
    let redisKey = this.#builtKeys.get(key);
    const remembered = redisKey !== undefined;
    if (redisKey === undefined) {
      try {
        redisKey = this.#buildKey(key);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    // Hot path: a memory hit is a map lookup and a few comparisons, with no await.
    const now = Date.now();
    const entry = this.#memory?.get(redisKey, now);
    if (entry !== undefined) {
      // Keys are remembered once they hit: a key read once (a miss) is not kept.
      if (!remembered) this.#remember(key, redisKey);
      if (entry.stale) this.#counters.staleServed++;
      else this.#counters.hitsMemory++;
      if (now >= entry.refreshAt) {
        entry.refreshStarted(); // one refresh per entry
        this.#refresh(redisKey, loader, options, entry.createdAt);
      }
      return Promise.resolve(entry.value as T);
    }
    const inflight = this.core.inflight.get(redisKey);
    if (inflight !== undefined) return inflight as Promise<T>;
    let load: Promise<T>;
    try {
      load = loadThrough(this.#loadRequest(redisKey, loader, options));
    } catch (error) {
      return Promise.reject(error);
    }
    // then() rather than finally(): finally() adds microtask hops to every miss.
    const loads = this.core.inflight;
    const shared = load.then(
      (value) => {
        loads.delete(redisKey);
        return value;
      },
      (error: unknown) => {
        loads.delete(redisKey);
        throw error;
      },
    );
    this.core.inflight.set(redisKey, shared);
    return shared;
  }

  /**
   * `getOrSet` for many keys at once: memory first, one MGET for the rest, one `batchLoader` call
   * for what is still missing (keys already loading in this process are awaited, not reloaded),
   * and one pipelined write. Returns values in the order of `keys`.
   * @throws LarderError `E_LOADER_FAILED` when the batch loader fails (every missing key fails).
   */
  async getOrSetMany<T>(
    keys: readonly string[],
    batchLoader: BatchLoader<T>,
    options?: SetOptions & { negativeTtl?: Duration },
  ): Promise<T[]> {
    const redisKeys = keys.map((k) => this.#key(k));
    const settings = this.#settings(options);
    this.core.assertOpen();
    const now = Date.now();
    const out: T[] = new Array<T>(keys.length);
    const pending: Array<Promise<void>> = [];
    const toRead: number[] = [];
    redisKeys.forEach((redisKey, i) => {
      const entry = this.#memory?.get(redisKey, now);
      if (entry !== undefined) {
        this.#counters.hitsMemory++;
        out[i] = entry.value as T;
        return;
      }
      const inflight = this.core.inflight.get(redisKey);
      if (inflight !== undefined) pending.push(inflight.then((v) => void (out[i] = v as T)));
      else toRead.push(i);
    });
    // A key repeated in the request is read and loaded once, at its first occurrence.
    const firstIndex = new Map<string, number>();
    for (const i of toRead)
      if (!firstIndex.has(redisKeys[i] as string)) firstIndex.set(redisKeys[i] as string, i);
    const unique = [...firstIndex.values()];
    const reads = await this.core.readRemoteMany(
      this.scope,
      unique.map((i) => redisKeys[i] as string),
      this.#counters,
      undefined,
    );
    const toLoad: Array<{ index: number; read: (typeof reads)[number] & { found: false } }> = [];
    reads.forEach((read, j) => {
      const index = unique[j] as number;
      if (read.found) out[index] = read.value as T;
      else toLoad.push({ index, read });
    });
    if (toLoad.length > 0) {
      const loaded = this.#loadBatch(toLoad, redisKeys, keys, batchLoader, settings);
      for (const { index } of toLoad) {
        const redisKey = redisKeys[index] as string;
        const one = loaded.then((values) => values.get(redisKey) as T);
        this.core.inflight.set(redisKey, one);
        void one.then(
          () => this.core.inflight.delete(redisKey),
          () => this.core.inflight.delete(redisKey),
        );
      }
      pending.push(
        loaded.then((values) => {
          for (const { index } of toLoad) out[index] = values.get(redisKeys[index] as string) as T;
        }),
      );
    }
    await Promise.all(pending);
    // Repeated keys take the value of their first occurrence.
    redisKeys.forEach((redisKey, i) => {
      if (!(i in out)) out[i] = out[redisKeys.indexOf(redisKey)] as T;
    });
    return out;
  }

  /** The cached value, or `undefined` on a miss. Redis failures count as misses. */
  async get<T>(key: string): Promise<T | undefined> {
    const redisKey = this.#key(key);
    const entry = this.#memory?.get(redisKey, Date.now());
    if (entry !== undefined) {
      this.#counters.hitsMemory++;
      return entry.value as T;
    }
    this.core.assertOpen();
    const read = await this.core.tracedRead('get', this.#counters, () =>
      this.core.readRemote(this.scope, redisKey, this.#counters, undefined, undefined),
    );
    if (read.found) return read.value as T;
    if (read.redisFailed) {
      const copy = this.core.memoryFallback(redisKey, this.#counters);
      if (copy !== undefined) return copy.value as T;
    }
    this.#counters.misses++;
    return undefined;
  }

  /** Whether a fresh entry (including a cached "not found") exists. */
  async has(key: string): Promise<boolean> {
    const redisKey = this.#key(key);
    if (this.#memory?.get(redisKey, Date.now()) !== undefined) return true;
    this.core.assertOpen();
    const read = await this.core.tracedRead('has', this.#counters, () =>
      this.core.readRemote(this.scope, redisKey, this.#counters, undefined, undefined),
    );
    return (
      read.found || (read.redisFailed && this.core.memoryFallback(redisKey, this.#counters) !== undefined)
    );
  }

  /**
   * Values for several keys, in order (`undefined` for misses): memory first, then one MGET for
   * the rest, with the scope's versions in the same round trip.
   */
  async getMany<T>(keys: readonly string[]): Promise<Array<T | undefined>> {
    const redisKeys = keys.map((k) => this.#key(k));
    const now = Date.now();
    // Dense (no holes): callers may iterate with for…in, map or some.
    const out: Array<T | undefined> = Array.from({ length: keys.length }, () => undefined);
    const missing: number[] = [];
    redisKeys.forEach((redisKey, i) => {
      const entry = this.#memory?.get(redisKey, now);
      if (entry === undefined) missing.push(i);
      else {
        this.#counters.hitsMemory++;
        out[i] = entry.value as T;
      }
    });
    if (missing.length === 0) return out;
    this.core.assertOpen();
    const reads = await this.core.readRemoteMany(
      this.scope,
      missing.map((i) => redisKeys[i] as string),
      this.#counters,
      undefined,
    );
    reads.forEach((read, j) => {
      const index = missing[j] as number;
      const copy =
        read.found || !read.redisFailed
          ? undefined
          : this.core.memoryFallback(redisKeys[index] as string, this.#counters);
      if (read.found) out[index] = read.value as T;
      else if (copy !== undefined) out[index] = copy.value as T;
      else this.#counters.misses++;
    });
    return out;
  }

  /**
   * Stores a value in both tiers. Redis failures do not throw: the value stays in memory, a
   * `fallback` event is emitted, and the write is replayed when Redis answers again.
   * @throws LarderError `E_INVALID_VALUE` for `undefined` or values JSON cannot represent,
   * `E_VALUE_TOO_LARGE`, `E_INVALID_TTL`, `E_INVALID_TAG`, `E_INVALID_KEY`.
   */
  async set<T>(key: string, value: T, options?: SetOptions): Promise<void> {
    await this.core.trace('larder.set', 'set', this.core.writeTier, this.#counters, async () => {
      const write = await this.#prepare(key, value, options);
      await this.core.write(this.scope, [write], this.#counters, false);
    });
  }

  /**
   * Stores several entries with one round trip to Redis. With `atomic: true` they are written in
   * one MULTI/EXEC, so readers see all or none (on a cluster, keys must share a slot).
   */
  async setMany(entries: ReadonlyArray<SetManyEntry>, options?: { atomic?: boolean }): Promise<void> {
    await this.core.trace('larder.set', 'setMany', this.core.writeTier, this.#counters, async () => {
      const writes = await Promise.all(entries.map((e) => this.#prepare(e.key, e.value, e)));
      await this.core.write(this.scope, writes, this.#counters, options?.atomic === true);
    });
  }

  /** Removes entries from both tiers (and from other instances' memory, over the bus). */
  async delete(...keys: string[]): Promise<void> {
    const redisKeys = keys.map((k) => this.#key(k));
    this.core.assertOpen();
    await this.core.trace('larder.delete', 'delete', this.core.writeTier, this.#counters, () =>
      this.core.delete(redisKeys, this.#counters),
    );
  }

  /**
   * Invalidates every entry of this scope written with any of `tags`, in O(1) per tag: a version
   * counter is bumped and entries recorded under the old version become misses when read.
   */
  async deleteByTag(tags: string | readonly string[]): Promise<void> {
    const list = typeof tags === 'string' ? [tags] : tags;
    list.forEach(validateTag);
    this.core.assertOpen();
    const cells = list.map((t) => this.core.versions.tag(this.scope, t));
    await this.core.trace('larder.deleteByTag', 'deleteByTag', this.core.writeTier, this.#counters, () =>
      this.core.bump(cells, this.#counters),
    );
  }

  /**
   * Invalidates every entry of this scope and its sub-scopes with one counter bump, then frees
   * their memory in the background (SCAN + UNLINK in pages) unless `reclaim` is `false`.
   */
  async clear(options?: { reclaim?: boolean }): Promise<void> {
    this.core.assertOpen();
    const chain = this.core.versions.scopeChain(this.scope);
    await this.core.trace('larder.clear', 'clear', this.core.writeTier, this.#counters, async () => {
      await this.core.bump([chain[chain.length - 1]!], this.#counters);
      if (options?.reclaim !== false) this.core.reclaim(this.scope, this.#counters);
    });
  }

  #refresh<T>(
    redisKey: string,
    loader: Loader<T>,
    options: GetOrSetOptions | undefined,
    createdAt: number,
  ): void {
    try {
      refreshInBackground(this.#loadRequest(redisKey, loader, options), createdAt);
    } catch {
      // Invalid per-call options surface on the next miss, where a caller can receive the error.
    }
  }

  #loadRequest<T>(redisKey: string, loader: Loader<T>, options: GetOrSetOptions | undefined): LoadRequest<T> {
    return {
      core: this.core,
      scope: this.scope,
      counters: this.#counters,
      redisKey,
      loader,
      settings: this.#settings(options),
    };
  }

  /** Per-call options over the cache defaults, validated. */
  #settings(options: GetOrSetOptions | undefined): LoadSettings {
    const defaults = this.core.options;
    options?.tags?.forEach(validateTag);
    const refreshAhead =
      options?.refreshAhead === false ? undefined : (options?.refreshAhead ?? defaults.refreshAhead);
    if (refreshAhead !== undefined && !(refreshAhead > 0 && refreshAhead < 1)) {
      throw new LarderError(
        ErrorCode.InvalidTtl,
        `Expected \`refreshAhead\` to be a fraction between 0 and 1 (exclusive), got ${describe(refreshAhead)}`,
        { option: 'refreshAhead', value: refreshAhead },
      );
    }
    return {
      ttlMs: options?.ttl === undefined ? defaults.defaultTtlMs : ttlOption(options.ttl, 'ttl'),
      negativeTtlMs:
        options?.negativeTtl === undefined
          ? defaults.negativeTtlMs
          : ttlOption(options.negativeTtl, 'negativeTtl', true),
      graceMs: options?.grace === undefined ? defaults.graceMs : ttlOption(options.grace, 'grace', true),
      graceBackoffMs:
        options?.graceBackoff === undefined
          ? defaults.graceBackoffMs
          : ttlOption(options.graceBackoff, 'graceBackoff'),
      softTimeoutMs:
        options?.loaderTimeout?.soft === undefined
          ? defaults.loaderSoftTimeoutMs
          : ttlOption(options.loaderTimeout.soft, 'loaderTimeout.soft'),
      hardTimeoutMs:
        options?.loaderTimeout?.hard === undefined
          ? defaults.loaderHardTimeoutMs
          : ttlOption(options.loaderTimeout.hard, 'loaderTimeout.hard'),
      refreshAhead,
      tags: options?.tags,
      lock: options?.lock !== false,
    };
  }

  /** Loads the misses of a `getOrSetMany` with one batch loader call and one pipelined write. */
  async #loadBatch<T>(
    toLoad: ReadonlyArray<{
      index: number;
      read: { cells: PreparedWrite['cells']; snapshot: number[]; redisFailed: boolean };
    }>,
    redisKeys: readonly string[],
    keys: readonly string[],
    batchLoader: BatchLoader<T>,
    settings: LoadSettings,
  ): Promise<Map<string, T>> {
    const counters = this.#counters;
    const userKeys = toLoad.map(({ index }) => keys[index] as string);
    counters.misses += toLoad.length;
    counters.loaderCalls++;
    const startedAt = performance.now();
    let loaded: ReadonlyArray<T> | ReadonlyMap<string, T>;
    try {
      loaded = await this.core.trace('larder.loader', 'getOrSetMany', 'loader', counters, async () =>
        batchLoader(userKeys),
      );
    } catch (error) {
      counters.loaderErrors++;
      this.core.events.emit('loader:error', {
        key: redisKeys[toLoad[0]?.index ?? 0] ?? '',
        namespace: counters.name,
        error,
      });
      throw new LarderError(
        ErrorCode.LoaderFailed,
        `The batch loader for ${userKeys.length} keys failed: ${String((error as Error)?.message ?? error)}`,
        { keys: userKeys },
        error,
      );
    }
    counters.loaderLatency.recordSince(startedAt);
    const values = new Map<string, T>();
    const writes: PreparedWrite[] = [];
    for (const [j, { index, read }] of toLoad.entries()) {
      const userKey = keys[index] as string;
      const value = (isMap(loaded) ? loaded.get(userKey) : loaded[j]) as T;
      const redisKey = redisKeys[index] as string;
      values.set(redisKey, value);
      const negative = value === null || value === undefined;
      const ttlMs = negative ? settings.negativeTtlMs : settings.ttlMs;
      if (ttlMs === 0) continue;
      writes.push(
        await this.core.prepareWrite(
          this.scope,
          redisKey,
          value,
          { ttlMs, graceMs: negative ? 0 : settings.graceMs, refreshAhead: settings.refreshAhead },
          settings.tags,
          counters,
          { cells: read.cells, versions: read.snapshot },
        ),
      );
    }
    if (writes.length > 0) {
      const redisFailed = toLoad.some(({ read }) => read.redisFailed);
      await this.core.write(this.scope, writes, counters, false, !redisFailed);
    }
    return values;
  }

  #prepare(
    key: string,
    value: unknown,
    options: SetOptions | undefined,
  ): PreparedWrite | Promise<PreparedWrite> {
    const redisKey = this.#key(key);
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol') {
      throw new LarderError(
        ErrorCode.InvalidValue,
        `Cannot cache ${describe(value)} under key ${describe(key)}: values must be JSON`,
        { key },
      );
    }
    options?.tags?.forEach(validateTag);
    const defaults = this.core.options;
    const timing = {
      ttlMs: options?.ttl === undefined ? defaults.defaultTtlMs : ttlOption(options.ttl, 'ttl'),
      graceMs: options?.grace === undefined ? defaults.graceMs : ttlOption(options.grace, 'grace', true),
      refreshAhead: undefined,
    };
    this.core.assertOpen();
    return this.core.prepareWrite(this.scope, redisKey, value, timing, options?.tags, this.#counters);
  }

  /** Validates a key and builds its Redis key (remembered ones are not built again). */
  #key(key: string): string {
    return this.#builtKeys.get(key) ?? this.#buildKey(key);
  }

  #buildKey(key: string): string {
    if (typeof key !== 'string' || key.length === 0 || key.length > this.#maxKeyLength) {
      throw new LarderError(
        ErrorCode.InvalidKey,
        `Expected a cache key of 1 to ${this.#maxKeyLength} characters (option maxKeyLength), got ${describe(key)}`,
        { key },
      );
    }
    // join() makes a flat string; `+` would make a cons string, which the memory tier would keep
    // as a wrapper around its flattened copy (~30-70 bytes more per entry, measured).
    return [this.#dataPrefix, escapeSegment(key)].join('');
  }

  #remember(key: string, redisKey: string): void {
    if (this.#builtKeys.size >= MAX_BUILT_KEYS) this.#builtKeys.clear();
    this.#builtKeys.set(key, redisKey);
  }
}

const MAX_BUILT_KEYS = 10_000;

function isMap<T>(value: ReadonlyArray<T> | ReadonlyMap<string, T>): value is ReadonlyMap<string, T> {
  return value instanceof Map;
}

function validateTag(tag: unknown): void {
  if (typeof tag !== 'string' || tag.length === 0 || tag.length > 256) {
    throw new LarderError(
      ErrorCode.InvalidTag,
      `Expected a tag of 1 to 256 characters, got ${describe(tag)}`,
      {
        tag,
      },
    );
  }
}
