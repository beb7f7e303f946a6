import { describe, ErrorCode, LarderError } from '../errors.js';
import { escapeSegment } from '../keys/escape.js';
import type { Scope } from '../keys/scope.js';
import { type Duration, ttlOption } from '../options/duration.js';
import type { NamespaceCounters } from '../telemetry/stats.js';
import type { CacheCore, PreparedWrite } from './cache-core.js';

/** Options of a write. */
export type SetOptions = {
  /** Time to live. @default the cache's `defaultTtl` */
  ttl?: Duration;
  /** Tags for {@link CacheScope.deleteByTag}, scoped like keys to this view. */
  tags?: readonly string[];
};

/** Options of {@link CacheScope.getOrSet}. */
export type GetOrSetOptions = SetOptions & {
  /** TTL when the loader returns `null` or `undefined`; `0` does not cache "not found". @default the cache's `negativeTtl` */
  negativeTtl?: Duration;
};

/** One entry of {@link CacheScope.setMany}. */
export type SetManyEntry = { key: string; value: unknown } & SetOptions;

/** A function that produces the value on a miss. */
export type Loader<T> = () => T | Promise<T>;

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

  /** @internal use `createCache()`, `namespace()` or `forTenant()`. */
  constructor(core: CacheCore, scope: Scope) {
    this.core = core;
    this.scope = scope;
    this.#counters = core.stats.forNamespace(scope.namespacePath);
    this.#dataPrefix = scope.dataPrefix;
    this.#maxKeyLength = core.options.maxKeyLength;
  }

  /** This view's path, e.g. `kpi/@acme` (empty for the root). */
  get path(): string {
    return this.scope.path;
  }

  /** A view of the namespace `name` inside this scope. @throws LarderError `E_INVALID_NAMESPACE` */
  namespace(name: string): CacheScope {
    return new CacheScope(this.core, this.scope.child('namespace', name));
  }

  /** A view of tenant `id`'s data inside this scope. @throws LarderError `E_INVALID_TENANT` */
  forTenant(id: string): CacheScope {
    return new CacheScope(this.core, this.scope.child('tenant', id));
  }

  /**
   * Returns the cached value, or runs `loader`, caches its result and returns it. Concurrent calls
   * for one key in this process share one loader call. Results `null`/`undefined` are cached for
   * `negativeTtl`. Redis failures never reach the caller: without Redis the loader's value is
   * served and kept in memory.
   * @throws LarderError `E_LOADER_FAILED` (with the loader's error as `cause`), or an input error.
   */
  getOrSet<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<T> {
    let redisKey: string;
    try {
      redisKey = this.#key(key);
    } catch (error) {
      return Promise.reject(error);
    }
    // Hot path: a memory hit is a map lookup and a version comparison, with no await.
    const entry = this.core.memory?.get(redisKey, Date.now());
    if (entry !== undefined) {
      this.#counters.hitsMemory++;
      return Promise.resolve(entry.value as T);
    }
    const inflight = this.core.inflight.get(redisKey);
    if (inflight !== undefined) return inflight as Promise<T>;
    const load = this.#load(redisKey, loader, options).finally(() => this.core.inflight.delete(redisKey));
    this.core.inflight.set(redisKey, load);
    return load;
  }

  /** The cached value, or `undefined` on a miss. Redis failures count as misses. */
  async get<T>(key: string): Promise<T | undefined> {
    const redisKey = this.#key(key);
    const entry = this.core.memory?.get(redisKey, Date.now());
    if (entry !== undefined) {
      this.#counters.hitsMemory++;
      return entry.value as T;
    }
    this.core.assertOpen();
    const read = await this.core.readRemote(this.scope, redisKey, this.#counters, undefined);
    if (read.found) return read.value as T;
    this.#counters.misses++;
    return undefined;
  }

  /** Whether an entry (including a cached "not found") exists. */
  async has(key: string): Promise<boolean> {
    const redisKey = this.#key(key);
    if (this.core.memory?.get(redisKey, Date.now()) !== undefined) return true;
    this.core.assertOpen();
    return (await this.core.readRemote(this.scope, redisKey, this.#counters, undefined)).found;
  }

  /**
   * Values for several keys, in order (`undefined` for misses): memory first, then one MGET for
   * the rest, with the scope's versions in the same round trip.
   */
  async getMany<T>(keys: readonly string[]): Promise<Array<T | undefined>> {
    const redisKeys = keys.map((k) => this.#key(k));
    const now = Date.now();
    const out: Array<T | undefined> = new Array(keys.length);
    const missing: number[] = [];
    redisKeys.forEach((redisKey, i) => {
      const entry = this.core.memory?.get(redisKey, now);
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
    );
    reads.forEach((read, j) => {
      if (read.found) out[missing[j] as number] = read.value as T;
      else this.#counters.misses++;
    });
    return out;
  }

  /**
   * Stores a value in both tiers. Redis failures do not throw: the value stays in memory and a
   * `fallback` event is emitted.
   * @throws LarderError `E_INVALID_VALUE` for `undefined` or values JSON cannot represent,
   * `E_VALUE_TOO_LARGE`, `E_INVALID_TTL`, `E_INVALID_TAG`, `E_INVALID_KEY`.
   */
  async set<T>(key: string, value: T, options?: SetOptions): Promise<void> {
    const write = await this.#prepare(key, value, options?.ttl, options?.tags);
    await this.core.write(this.scope, [write], this.#counters, false);
  }

  /**
   * Stores several entries with one round trip to Redis. With `atomic: true` they are written in
   * one MULTI/EXEC, so readers see all or none (on a cluster, keys must share a slot).
   */
  async setMany(entries: ReadonlyArray<SetManyEntry>, options?: { atomic?: boolean }): Promise<void> {
    const writes = await Promise.all(entries.map((e) => this.#prepare(e.key, e.value, e.ttl, e.tags)));
    await this.core.write(this.scope, writes, this.#counters, options?.atomic === true);
  }

  /** Removes entries from both tiers. */
  async delete(...keys: string[]): Promise<void> {
    const redisKeys = keys.map((k) => this.#key(k));
    this.core.assertOpen();
    await this.core.delete(redisKeys, this.#counters);
  }

  /**
   * Invalidates every entry of this scope written with any of `tags`, in O(1) per tag: a version
   * counter is bumped and entries recorded under the old version become misses when read.
   */
  async deleteByTag(tags: string | readonly string[]): Promise<void> {
    const list = typeof tags === 'string' ? [tags] : tags;
    list.forEach(validateTag);
    this.core.assertOpen();
    await this.core.bump(
      list.map((t) => this.core.versions.tag(this.scope, t)),
      this.#counters,
    );
  }

  /**
   * Invalidates every entry of this scope and its sub-scopes with one counter bump, then frees
   * their memory in the background (SCAN + UNLINK in pages) unless `reclaim` is `false`.
   */
  async clear(options?: { reclaim?: boolean }): Promise<void> {
    this.core.assertOpen();
    const chain = this.core.versions.scopeChain(this.scope);
    await this.core.bump([chain[chain.length - 1]!], this.#counters);
    if (options?.reclaim !== false) this.core.reclaim(this.scope, this.#counters);
  }

  async #load<T>(redisKey: string, loader: Loader<T>, options: GetOrSetOptions | undefined): Promise<T> {
    this.core.assertOpen();
    const tags = options?.tags;
    tags?.forEach(validateTag);
    const ttlMs = options?.ttl === undefined ? this.core.options.defaultTtlMs : ttlOption(options.ttl, 'ttl');
    const negativeTtlMs =
      options?.negativeTtl === undefined
        ? this.core.options.negativeTtlMs
        : ttlOption(options.negativeTtl, 'negativeTtl', true);

    const read = await this.core.readRemote(this.scope, redisKey, this.#counters, tags);
    if (read.found) return read.value as T;
    this.#counters.misses++;
    this.#counters.loaderCalls++;
    const startedAt = performance.now();
    let value: T;
    try {
      value = await loader();
    } catch (error) {
      this.#counters.loaderErrors++;
      this.core.events.emit('loader:error', { key: redisKey, namespace: this.#counters.name, error });
      throw new LarderError(
        ErrorCode.LoaderFailed,
        `The loader for key ${describe(redisKey)} failed: ${String((error as Error)?.message ?? error)}`,
        { key: redisKey },
        error,
      );
    }
    this.#counters.loaderLatency.recordSince(startedAt);
    const negative = value === null || value === undefined;
    const entryTtl = negative ? negativeTtlMs : ttlMs;
    if (entryTtl > 0 && !this.core.closed) {
      const write = await this.core.prepareWrite(
        this.scope,
        redisKey,
        value,
        entryTtl,
        tags,
        this.#counters,
        {
          cells: read.cells,
          versions: read.snapshot,
        },
      );
      await this.core.write(this.scope, [write], this.#counters, false, !read.redisFailed);
    }
    return value;
  }

  #prepare(
    key: string,
    value: unknown,
    ttl: Duration | undefined,
    tags: readonly string[] | undefined,
  ): Promise<PreparedWrite> {
    const redisKey = this.#key(key);
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol') {
      throw new LarderError(
        ErrorCode.InvalidValue,
        `Cannot cache ${describe(value)} under key ${describe(key)}: values must be JSON`,
        { key },
      );
    }
    tags?.forEach(validateTag);
    const ttlMs = ttl === undefined ? this.core.options.defaultTtlMs : ttlOption(ttl, 'ttl');
    this.core.assertOpen();
    return this.core.prepareWrite(this.scope, redisKey, value, ttlMs, tags, this.#counters);
  }

  /** Validates a key and builds its Redis key. */
  #key(key: string): string {
    if (typeof key !== 'string' || key.length === 0 || key.length > this.#maxKeyLength) {
      throw new LarderError(
        ErrorCode.InvalidKey,
        `Expected a cache key of 1 to ${this.#maxKeyLength} characters (option maxKeyLength), got ${describe(key)}`,
        { key },
      );
    }
    return this.#dataPrefix + escapeSegment(key);
  }
}

function validateTag(tag: unknown): void {
  if (typeof tag !== 'string' || tag.length === 0 || tag.length > 256) {
    throw new LarderError(
      ErrorCode.InvalidTag,
      `Expected a tag of 1 to 256 characters, got ${describe(tag)}`,
      { tag },
    );
  }
}
