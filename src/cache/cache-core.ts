import { decodeEnvelope, encodeEnvelope, type Envelope } from '../codec/envelope.js';
import type { DriverWrite } from '../drivers/driver.js';
import { ErrorCode, LarderError } from '../errors.js';
import type { Scope } from '../keys/scope.js';
import type { ResolvedOptions } from '../options/cache-options.js';
import { fallbackReason, type RedisGateway } from '../resilience/redis-gateway.js';
import type { CacheEventEmitter } from '../telemetry/events.js';
import type { NamespaceCounters, StatsRegistry } from '../telemetry/stats.js';
import { MemoryEntry, type MemoryTier } from '../tiers/memory-tier.js';
import type { VersionCell, VersionRegistry } from './versions.js';

/** What a read from Redis found. `snapshot` holds the versions seen, for a write that follows a load. */
export type RemoteRead =
  | { readonly found: true; readonly value: unknown }
  | {
      readonly found: false;
      readonly cells: VersionCell[];
      readonly snapshot: number[];
      /** Redis was not usable for this read (down, slow, circuit open). */
      readonly redisFailed: boolean;
    };

/** A write prepared for both tiers. */
export type PreparedWrite = {
  readonly key: string;
  readonly value: unknown;
  readonly ttlMs: number;
  /** Tag names, raw; their cells follow the scope chain's in `cells`. */
  readonly tags: readonly string[];
  readonly cells: VersionCell[];
  readonly versions: number[];
};

const MISS_NO_VERSIONS: RemoteRead = { found: false, cells: [], snapshot: [], redisFailed: false };
const MISS_REDIS_FAILED: RemoteRead = { found: false, cells: [], snapshot: [], redisFailed: true };

/**
 * State shared by a cache and all its scoped views, and the multi-step flows that touch both
 * tiers: read-through with version checks, writes, version bumps and their replay, reclamation.
 * Scoped views (`cache-scope.ts`) validate input and call in here.
 */
export class CacheCore {
  readonly inflight = new Map<string, Promise<unknown>>();
  readonly #background = new Set<Promise<void>>();
  #closed = false;
  #replaying = false;
  #pendingBumps = 0;

  constructor(
    readonly options: ResolvedOptions,
    readonly memory: MemoryTier | undefined,
    readonly gateway: RedisGateway | undefined,
    readonly versions: VersionRegistry,
    readonly stats: StatsRegistry,
    readonly events: CacheEventEmitter,
  ) {}

  get closed(): boolean {
    return this.#closed;
  }

  assertOpen(): void {
    if (this.#closed) throw new LarderError(ErrorCode.Closed, 'The cache was used after close()');
  }

  /** Puts a value in the memory tier, bounded by `memory.maxTtl`. */
  fillMemory(
    key: string,
    value: unknown,
    expiresAt: number,
    cells: readonly VersionCell[],
    versions: readonly number[],
    bytes: number,
    now: number,
  ): void {
    if (this.memory === undefined || this.options.memory === false) return;
    const until = Math.min(expiresAt, now + this.options.memory.maxTtlMs);
    this.memory.set(key, new MemoryEntry(value, until, cells, versions), bytes);
  }

  /**
   * Reads `key` from Redis with the versions of its scope (and of `tags`, if given) in one round
   * trip, checks them, and fills the memory tier on a hit. Redis failures become misses.
   */
  async readRemote(
    scope: Scope,
    key: string,
    counters: NamespaceCounters,
    tags: readonly string[] | undefined,
  ): Promise<RemoteRead> {
    const gateway = this.gateway;
    const cells = this.#cellsFor(scope, tags);
    if (gateway === undefined)
      return { found: false, cells, snapshot: cells.map(versionOf), redisFailed: false };
    try {
      // One MGET: the entry first, then its versions.
      const replies = await gateway.run('get', counters, (d) => d.mget([key, ...cells.map(keyOf)]));
      const raw = replies[0] ?? null;
      this.#observe(cells, replies.slice(1));
      const snapshot = cells.map(versionOf);
      if (raw === null) return { found: false, cells, snapshot, redisFailed: false };
      const value = await this.#accept(
        scope,
        key,
        decodeEnvelope(raw),
        raw.length,
        cells,
        new Set(cells),
        counters,
      );
      return value === REJECTED
        ? { found: false, cells, snapshot, redisFailed: false }
        : { found: true, value };
    } catch (error) {
      this.fallback(error, 'get', counters);
      return { found: false, cells, snapshot: cells.map(versionOf), redisFailed: true };
    }
  }

  /** Batch form of {@link readRemote}: one MGET for the entries plus the scope's versions. */
  async readRemoteMany(
    scope: Scope,
    keys: readonly string[],
    counters: NamespaceCounters,
  ): Promise<Array<RemoteRead>> {
    const gateway = this.gateway;
    if (gateway === undefined || keys.length === 0) return keys.map(() => MISS_NO_VERSIONS);
    const cells = this.versions.scopeChain(scope);
    try {
      // One MGET: the entries, then the scope chain's versions.
      const replies = await gateway.run('getMany', counters, (d) => d.mget([...keys, ...cells.map(keyOf)]));
      const raws = replies.slice(0, keys.length);
      this.#observe(cells, replies.slice(keys.length));
      // null: no entry; undefined: bytes that are not an envelope (counted in #accept).
      const envelopes = raws.map((raw) => (raw === null || raw === undefined ? null : decodeEnvelope(raw)));
      const fresh = await this.#prefetchTags(scope, envelopes, counters);
      for (const cell of cells) fresh.add(cell);
      const out: RemoteRead[] = [];
      for (let i = 0; i < keys.length; i++) {
        const envelope = envelopes[i];
        const value =
          envelope === null
            ? REJECTED
            : await this.#accept(
                scope,
                keys[i] as string,
                envelope,
                raws[i]?.length ?? 0,
                cells,
                fresh,
                counters,
              );
        out.push(value === REJECTED ? MISS_NO_VERSIONS : { found: true, value });
      }
      return out;
    } catch (error) {
      this.fallback(error, 'getMany', counters);
      return keys.map(() => MISS_REDIS_FAILED);
    }
  }

  /**
   * Builds a write: the cells it depends on and their versions. Versions come from `snapshot`
   * (taken before a loader ran, so a clear during the load invalidates the result) or, for plain
   * sets, from the cells, after fetching any never read from Redis.
   */
  async prepareWrite(
    scope: Scope,
    key: string,
    value: unknown,
    ttlMs: number,
    tags: readonly string[] | undefined,
    counters: NamespaceCounters,
    snapshot?: { cells: VersionCell[]; versions: number[] },
  ): Promise<PreparedWrite> {
    const tagList = tags ?? [];
    if (snapshot !== undefined && snapshot.cells.length > 0) {
      return { key, value, ttlMs, tags: tagList, cells: snapshot.cells, versions: snapshot.versions };
    }
    const cells = this.#cellsFor(scope, tags);
    await this.refreshUnknown(cells, counters);
    return { key, value, ttlMs, tags: tagList, cells, versions: cells.map(versionOf) };
  }

  /** Reads from Redis the cells never read before (one MGET); failures leave them at 0. */
  async refreshUnknown(cells: readonly VersionCell[], counters: NamespaceCounters): Promise<void> {
    const unknown = cells.filter((c) => !c.known);
    if (unknown.length === 0 || this.gateway === undefined) return;
    try {
      const remote = await this.gateway.run('versions', counters, (d) => d.mget(unknown.map(keyOf)));
      this.#observe(unknown, remote);
    } catch (error) {
      this.fallback(error, 'versions', counters);
    }
  }

  /**
   * Encodes and stores prepared writes in memory and, in one round trip, in Redis (a MULTI when
   * `atomic`). Encoding errors are thrown before anything is stored; Redis errors fall back.
   * With `awaitRedis` false the Redis write goes on in the background: used after a read that
   * found Redis failing, so one call never waits for two Redis timeouts.
   */
  async write(
    scope: Scope,
    writes: readonly PreparedWrite[],
    counters: NamespaceCounters,
    atomic: boolean,
    awaitRedis = true,
  ): Promise<void> {
    const now = Date.now();
    const chainLength = scope.chain.length;
    const encoded: DriverWrite[] = writes.map((w) => {
      const tagVersions = w.tags.length > 0 ? tagRecord(w.tags, w.versions, chainLength) : undefined;
      const value = encodeEnvelope(
        {
          value: w.value,
          createdAt: now,
          expiresAt: now + w.ttlMs,
          scopeVersions: w.versions.slice(0, chainLength),
          tagVersions,
        },
        this.options.maxValueBytes,
        w.key,
      );
      return { key: w.key, value, ttlMs: w.ttlMs };
    });
    for (let i = 0; i < writes.length; i++) {
      const w = writes[i] as PreparedWrite;
      this.fillMemory(
        w.key,
        w.value,
        now + w.ttlMs,
        w.cells,
        w.versions,
        (encoded[i] as DriverWrite).value.length,
        now,
      );
    }
    counters.sets += writes.length;
    if (this.gateway === undefined) return;
    const redisWrite = this.#writeRedis(encoded, counters, atomic);
    if (awaitRedis) await redisWrite;
    else this.#track(redisWrite);
  }

  async #writeRedis(
    encoded: readonly DriverWrite[],
    counters: NamespaceCounters,
    atomic: boolean,
  ): Promise<void> {
    if (this.gateway === undefined) return;
    try {
      if (encoded.length === 1 && !atomic) {
        const only = encoded[0] as DriverWrite;
        await this.gateway.run('set', counters, (d) => d.set(only.key, only.value, only.ttlMs));
      } else {
        await this.gateway.run(atomic ? 'setAtomic' : 'setMany', counters, (d) => d.setMany(encoded, atomic));
      }
    } catch (error) {
      this.fallback(error, 'set', counters);
    }
  }

  /** Deletes keys from both tiers. */
  async delete(keys: readonly string[], counters: NamespaceCounters): Promise<void> {
    for (const key of keys) this.memory?.delete(key);
    counters.deletes += keys.length;
    if (this.gateway === undefined) return;
    try {
      await this.gateway.run('delete', counters, (d) => d.unlink(keys));
    } catch (error) {
      this.fallback(error, 'delete', counters);
    }
  }

  /**
   * Bumps version counters: every entry recorded under the old versions becomes a miss. Applied
   * locally at once; when Redis cannot be reached the bump is replayed once it can.
   */
  async bump(cells: readonly VersionCell[], counters: NamespaceCounters): Promise<void> {
    if (this.gateway === undefined) {
      for (const cell of cells) this.versions.bumpLocally(cell, false);
      return;
    }
    try {
      const values = await this.gateway.run('bump', counters, (d) =>
        d.incrBy(cells.map(keyOf), bumpIncrement()),
      );
      cells.forEach((cell, i) => {
        this.versions.bumped(cell, values[i] as number);
      });
    } catch (error) {
      this.fallback(error, 'bump', counters);
      for (const cell of cells) {
        if (!cell.pendingBump) this.#pendingBumps += 1;
        this.versions.bumpLocally(cell, true);
      }
    }
  }

  /** Called after each successful Redis call: replays bumps that failed earlier, once. */
  onRedisSuccess(): void {
    if (this.#pendingBumps === 0 || this.#replaying || this.gateway === undefined) return;
    this.#replaying = true;
    const pending = this.versions.pending();
    const counters = this.stats.forNamespace('(root)');
    this.gateway
      .run('replayBumps', counters, (d) => d.incrBy(pending.map(keyOf), bumpIncrement()))
      .then(
        (values) => {
          pending.forEach((cell, i) => {
            this.versions.bumped(cell, values[i] as number);
          });
          this.#pendingBumps = Math.max(0, this.#pendingBumps - pending.length);
          this.options.logger.info(
            { count: pending.length },
            'larder: replayed version bumps made while Redis was unavailable',
          );
        },
        (error: unknown) => this.fallback(error, 'replayBumps', counters),
      )
      .finally(() => {
        this.#replaying = false;
      });
  }

  /** Frees a cleared scope's entries in the background: SCAN + UNLINK in pages, never KEYS. */
  reclaim(scope: Scope, counters: NamespaceCounters): void {
    this.memory?.deleteByPrefix(scope.dataPrefix);
    const gateway = this.gateway;
    if (gateway === undefined) return;
    const pageSize = this.options.redis === false ? 500 : this.options.redis.reclaimPageSize;
    const task = (async () => {
      let cursor = '0';
      let unlinked = 0;
      do {
        if (this.#closed) return;
        const page = await gateway.run('reclaim', counters, (d) =>
          d.scan(cursor, scope.dataPattern, pageSize),
        );
        cursor = page.cursor;
        if (page.keys.length > 0)
          unlinked += await gateway.run('reclaim', counters, (d) => d.unlink(page.keys));
      } while (cursor !== '0');
      this.events.emit('reclaimed', { scope: scope.path, keys: unlinked });
    })().catch((error: unknown) => {
      // Reclamation is an optimisation: the bump already made the entries misses, and their TTL
      // frees them anyway. Log and count, do not fail anything.
      this.options.logger.warn(
        { scope: scope.path, err: String(error) },
        'larder: reclaim after clear() stopped',
      );
    });
    this.#track(task);
  }

  /** Keeps a background task until it settles, so `close()` can wait for it. */
  #track(task: Promise<void>): void {
    const settled = task
      .catch((error: unknown) => {
        // Background work has no caller to tell; the failure is logged and the task dropped.
        this.options.logger.error({ err: String(error) }, 'larder: background task failed');
      })
      .finally(() => this.#background.delete(settled));
    this.#background.add(settled);
  }

  /** Counts and reports a Redis failure that was absorbed; rethrows anything else. */
  fallback(error: unknown, operation: string, counters: NamespaceCounters): void {
    const reason = fallbackReason(error);
    if (reason === undefined) throw error;
    counters.fallbacks += 1;
    this.events.emit('fallback', { operation, namespace: counters.name, reason });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#background]);
    this.inflight.clear();
    this.memory?.clear();
    this.versions.clear();
  }

  #cellsFor(scope: Scope, tags: readonly string[] | undefined): VersionCell[] {
    const chain = this.versions.scopeChain(scope);
    if (tags === undefined || tags.length === 0) return chain;
    return [...chain, ...tags.map((t) => this.versions.tag(scope, t))];
  }

  #observe(cells: readonly VersionCell[], remote: ReadonlyArray<string | null>): void {
    for (let i = 0; i < cells.length; i++) this.versions.observe(cells[i] as VersionCell, remote[i] ?? null);
  }

  /** Fetches in one MGET the versions of every tag the entries name; returns the cells read. */
  async #prefetchTags(
    scope: Scope,
    envelopes: ReadonlyArray<Envelope | null | undefined>,
    counters: NamespaceCounters,
  ): Promise<Set<VersionCell>> {
    const wanted = new Set<VersionCell>();
    for (const envelope of envelopes) {
      for (const tag of Object.keys(envelope?.tagVersions ?? {})) wanted.add(this.versions.tag(scope, tag));
    }
    if (wanted.size === 0 || this.gateway === undefined) return wanted;
    const cells = [...wanted];
    const remote = await this.gateway.run('tagVersions', counters, (d) => d.mget(cells.map(keyOf)));
    this.#observe(cells, remote);
    return wanted;
  }

  /**
   * Decodes and judges a stored entry against current versions; on success fills the memory tier.
   * Versions are compared only with values read in this same read (`fresh`): tag versions not read
   * with the entry are read now, in a second round trip, never taken from an older read.
   */
  async #accept(
    scope: Scope,
    key: string,
    envelope: Envelope | undefined,
    rawBytes: number,
    chainAndTags: readonly VersionCell[],
    fresh: ReadonlySet<VersionCell>,
    counters: NamespaceCounters,
  ): Promise<unknown> {
    if (envelope === undefined) {
      counters.decodeErrors += 1;
      this.events.emit('decode:error', { key, namespace: counters.name, message: 'not a Larder envelope' });
      this.options.logger.warn(
        { key, namespace: counters.name },
        'larder: undecodable value treated as a miss',
      );
      return REJECTED;
    }
    const now = Date.now();
    if (envelope.expiresAt <= now) return REJECTED;
    const chain = scope.chain.length;
    if (envelope.scopeVersions.length !== chain) return REJECTED;
    for (let i = 0; i < chain; i++) {
      if ((chainAndTags[i] as VersionCell).value !== envelope.scopeVersions[i]) return REJECTED;
    }
    const cells = chainAndTags.slice(0, chain);
    const versions = [...envelope.scopeVersions];
    const tags = Object.entries(envelope.tagVersions ?? {});
    if (tags.length > 0) {
      const tagCells = tags.map(([tag]) => this.versions.tag(scope, tag));
      const stale = tagCells.filter((c) => !fresh.has(c));
      if (stale.length > 0 && this.gateway !== undefined) {
        const remote = await this.gateway.run('tagVersions', counters, (d) => d.mget(stale.map(keyOf)));
        this.#observe(stale, remote);
      }
      for (let i = 0; i < tags.length; i++) {
        const cell = tagCells[i] as VersionCell;
        const recorded = (tags[i] as [string, number])[1];
        if (cell.value !== recorded) return REJECTED;
        cells.push(cell);
        versions.push(recorded);
      }
    }
    counters.hitsRedis += 1;
    this.fillMemory(key, envelope.value, envelope.expiresAt, cells, versions, rawBytes, now);
    return envelope.value;
  }
}

const REJECTED = Symbol('rejected');

function keyOf(cell: VersionCell): string {
  return cell.key;
}

function versionOf(cell: VersionCell): number {
  return cell.value;
}

function tagRecord(
  tags: readonly string[],
  versions: readonly number[],
  from: number,
): Record<string, number> {
  const record: Record<string, number> = {};
  tags.forEach((tag, i) => {
    record[tag] = versions[from + i] as number;
  });
  return record;
}

/**
 * A random increment per bump: after Redis loses its data (restart without persistence) counters
 * restart from 0, and equal-valued versions from before and after the loss must not meet again.
 */
function bumpIncrement(): number {
  return 1 + Math.floor(Math.random() * 0xfffff);
}
