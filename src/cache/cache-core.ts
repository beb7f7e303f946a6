import { InvalidationBus } from '../bus/invalidation-bus.js';
import type { EnvelopeCodec } from '../codec/codec.js';
import type { Envelope } from '../codec/envelope.js';
import type { DriverWrite, RedisDriver, StoredValue } from '../drivers/driver.js';
import { ErrorCode, LarderError } from '../errors.js';
import type { Scope } from '../keys/scope.js';
import type { ResolvedOptions } from '../options/cache-options.js';
import { fallbackReason, type RedisGateway } from '../resilience/redis-gateway.js';
import type { CacheEventEmitter } from '../telemetry/events.js';
import { type SpanName, type TraceSpan, type TracedOperation, Tracing } from '../telemetry/tracing.js';
import type { NamespaceCounters, StatsRegistry } from '../telemetry/stats.js';
import { MemoryEntry, type MemoryTier } from '../tiers/memory-tier.js';
import { PendingWrites } from './pending-writes.js';
import type { VersionCell, VersionRegistry } from './versions.js';

/** An entry read from Redis that passed the version checks. */
export type RemoteEntry = {
  readonly value: unknown;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly graceUntil: number;
};

/**
 * What a read from Redis found. A miss carries the versions seen (`snapshot`), for a write that
 * follows a load, and any `stale` entry (expired, within grace) for fail-safe.
 */
export type RemoteRead =
  | ({ readonly found: true; readonly cells: VersionCell[]; readonly snapshot: number[] } & RemoteEntry)
  | {
      readonly found: false;
      readonly cells: VersionCell[];
      readonly snapshot: number[];
      /** Redis was not usable for this read (down, slow, circuit open). */
      readonly redisFailed: boolean;
      readonly stale: RemoteEntry | undefined;
    };

/** A write prepared for both tiers. */
export type PreparedWrite = {
  readonly key: string;
  readonly value: unknown;
  readonly ttlMs: number;
  /** Extra time the entry may be served stale after `ttlMs` (0: none). */
  readonly graceMs: number;
  /** Tag names, raw; their cells follow the scope chain's in `cells`. */
  readonly tags: readonly string[];
  readonly cells: VersionCell[];
  readonly versions: number[];
  /** Refresh-ahead fraction of the TTL, if any. */
  readonly refreshAhead: number | undefined;
};

/** How a stored entry was judged: `fresh` (served), or stale within grace, or rejected (`entry` undefined). */
type Judged = { fresh: true; entry: RemoteEntry } | { fresh: false; entry: RemoteEntry | undefined };
const REJECTED: Judged = Object.freeze({ fresh: false, entry: undefined });

// Replayed writes per round trip after an outage.
const REPLAY_PAGE = 200;

const MISS_NO_VERSIONS: RemoteRead = {
  found: false,
  cells: [],
  snapshot: [],
  redisFailed: false,
  stale: undefined,
};
const MISS_REDIS_FAILED: RemoteRead = {
  found: false,
  cells: [],
  snapshot: [],
  redisFailed: true,
  stale: undefined,
};

/**
 * State shared by a cache and all its scoped views, and the multi-step flows that touch both
 * tiers: read-through with version checks, writes, version bumps, the L1 bus, replay after an
 * outage, reclamation. Scoped views (`cache-scope.ts`) validate input and call in here.
 */
export class CacheCore {
  readonly inflight = new Map<string, Promise<unknown>>();
  /** Keys with a refresh-ahead reload running. */
  readonly refreshing = new Set<string>();
  /** OpenTelemetry spans, a no-op unless an SDK is registered. Never used on memory hits. */
  readonly tracing = new Tracing();
  readonly bus: InvalidationBus | undefined;
  readonly #background = new Set<Promise<void>>();
  readonly #pendingWrites: PendingWrites;
  #closed = false;
  #replaying = false;
  #pendingBumps = 0;
  #pendingPublish = new Set<string>();

  constructor(
    readonly options: ResolvedOptions,
    readonly memory: MemoryTier | undefined,
    readonly gateway: RedisGateway | undefined,
    readonly versions: VersionRegistry,
    readonly stats: StatsRegistry,
    readonly events: CacheEventEmitter,
    readonly codec: EnvelopeCodec,
    channel: string,
  ) {
    const redis = options.redis;
    this.#pendingWrites = new PendingWrites(redis === false ? 0 : redis.maxPendingWrites);
    if (gateway !== undefined && memory !== undefined && redis !== false && redis.bus !== false) {
      const bus = new InvalidationBus(
        channel,
        {
          keys: (keys) => {
            for (const key of keys) memory.delete(key);
          },
          versions: (pairs) => {
            for (const [key, value] of pairs) this.versions.observeIfKnown(key, value);
          },
          state: (state, { reason, missedMessages }) => {
            // Messages may have been missed: every memory entry must be checked with Redis again
            // (it stays usable as a fallback while Redis itself is down).
            if (state === 'down' || missedMessages) memory.distrustAll();
            this.events.emit('bus', { state, reason });
            const level = state === 'down' ? 'warn' : 'info';
            options.logger[level]({ reason }, `larder: invalidation bus ${state}`);
          },
        },
        options.logger,
      );
      this.bus = bus.start(gateway.driver) ? bus : undefined;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * A memory copy that has not expired, for when Redis could not be asked: the memory tier keeps
   * serving through an outage. Counted as a memory hit.
   */
  memoryFallback(key: string, counters: NamespaceCounters): { value: unknown } | undefined {
    const now = Date.now();
    const entry = this.memory?.peek(key, now);
    if (entry === undefined || now >= entry.expiresAt) return undefined;
    counters.hitsMemory++;
    return entry;
  }

  /** Runs `fn` in a span tagged with the namespace, operation and tier. */
  trace<T>(
    name: SpanName,
    operation: TracedOperation,
    tier: 'memory' | 'redis' | 'loader',
    counters: NamespaceCounters,
    fn: (span: TraceSpan) => Promise<T>,
  ): Promise<T> {
    const attributes = {
      'larder.namespace': counters.name,
      'larder.operation': operation,
      'larder.tier': tier,
    } as const;
    return this.tracing.span(name, attributes, fn);
  }

  /** A Redis read in a `larder.redis.read` span that records whether it hit. */
  tracedRead(
    operation: TracedOperation,
    counters: NamespaceCounters,
    read: () => Promise<RemoteRead>,
  ): Promise<RemoteRead> {
    if (this.gateway === undefined) return read();
    return this.trace('larder.redis.read', operation, 'redis', counters, (span) => {
      // Without a recording span (no SDK, sampled out), the read's own promise: no extra hop.
      if (!span.isRecording()) return read();
      return read().then((result) => {
        span.setAttribute('larder.hit', result.found);
        return result;
      });
    });
  }

  /** The tier writes go to, for span attributes. */
  get writeTier(): 'memory' | 'redis' {
    return this.gateway === undefined ? 'memory' : 'redis';
  }

  /** Writes and deletes waiting to be replayed in Redis. */
  get pendingWrites(): number {
    return this.#pendingWrites.size;
  }

  assertOpen(): void {
    if (this.#closed) throw new LarderError(ErrorCode.Closed, 'The cache was used after close()');
  }

  /**
   * Puts a value in the memory tier. It is served without asking Redis until `memory.maxTtl`
   * (or, while the bus is configured but down, its short TTL) or its expiry, whichever is first.
   */
  fillMemory(
    scope: Scope,
    key: string,
    entry: RemoteEntry,
    cells: readonly VersionCell[],
    versions: readonly number[],
    bytes: number,
    now: number,
    refreshAhead: number | undefined,
  ): void {
    if (this.memory === undefined || this.options.memory === false) return;
    if (!scope.memory && this.gateway !== undefined) return; // kept out of the memory tier
    const redis = this.options.redis;
    const trustMs =
      this.bus !== undefined && !this.bus.healthy && redis !== false && redis.bus !== false
        ? Math.min(this.options.memory.maxTtlMs, redis.bus.unhealthyMemoryTtlMs)
        : this.options.memory.maxTtlMs;
    this.memory.set(
      key,
      new MemoryEntry(
        entry.value,
        entry.createdAt,
        Math.min(entry.expiresAt, now + trustMs),
        entry.expiresAt,
        entry.graceUntil,
        cells,
        versions,
        refreshAhead,
      ),
      bytes,
    );
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
    refreshAhead: number | undefined,
  ): Promise<RemoteRead> {
    const gateway = this.gateway;
    const cells = this.#cellsFor(scope, tags);
    if (gateway === undefined) {
      return {
        found: false,
        cells,
        snapshot: this.versions.snapshot(cells),
        redisFailed: false,
        stale: undefined,
      };
    }
    try {
      // One MGET: the entry first, then its versions.
      const keys = [key];
      for (const cell of cells) keys.push(cell.key);
      const replies = await gateway.run('get', counters, (d) => this.#mget(d, keys));
      let raw = replies[0] ?? null;
      this.#observe(cells, replies, 1);
      if (isBinaryReadAsText(raw)) raw = (await this.#rereadAsBytes([key], counters))[0] ?? null;
      const snapshot = this.versions.snapshot(cells);
      if (raw === null) return { found: false, cells, snapshot, redisFailed: false, stale: undefined };
      const judging = this.#judge(
        scope,
        key,
        this.codec.decode(raw),
        raw.length,
        cells,
        undefined,
        counters,
        refreshAhead,
      );
      const judged = judging instanceof Promise ? await judging : judging;
      if (judged.fresh) return { found: true, cells, snapshot, ...judged.entry };
      return { found: false, cells, snapshot, redisFailed: false, stale: judged.entry };
    } catch (error) {
      this.fallback(error, 'get', counters);
      return {
        found: false,
        cells,
        snapshot: this.versions.snapshot(cells),
        redisFailed: true,
        stale: undefined,
      };
    }
  }

  /** Batch form of {@link readRemote}: one MGET for the entries plus the scope's versions. */
  async readRemoteMany(
    scope: Scope,
    keys: readonly string[],
    counters: NamespaceCounters,
    refreshAhead: number | undefined,
  ): Promise<Array<RemoteRead>> {
    const gateway = this.gateway;
    if (gateway === undefined || keys.length === 0) return keys.map(() => MISS_NO_VERSIONS);
    const cells = this.versions.scopeChain(scope);
    try {
      // One MGET: the entries, then the scope chain's versions.
      const replies = await gateway.run('getMany', counters, (d) =>
        this.#mget(d, [...keys, ...cells.map(keyOf)]),
      );
      const raws = replies.slice(0, keys.length);
      const binaryAsText = keys.filter((_, i) => isBinaryReadAsText(raws[i] ?? null));
      if (binaryAsText.length > 0) {
        const bytes = await this.#rereadAsBytes(binaryAsText, counters);
        let next = 0;
        raws.forEach((raw, i) => {
          if (isBinaryReadAsText(raw ?? null)) raws[i] = bytes[next++] ?? null;
        });
      }
      this.#observe(cells, replies, keys.length);
      // null: no entry; undefined: bytes that are not an envelope (counted in #judge).
      const envelopes = raws.map((raw) =>
        raw === null || raw === undefined ? null : this.codec.decode(raw),
      );
      const fresh = await this.#prefetchTags(scope, envelopes, counters);
      for (const cell of cells) fresh.add(cell);
      const snapshot = this.versions.snapshot(cells);
      const out: RemoteRead[] = [];
      for (let i = 0; i < keys.length; i++) {
        const envelope = envelopes[i];
        if (envelope === null) {
          out.push({ found: false, cells, snapshot, redisFailed: false, stale: undefined });
          continue;
        }
        const bytes = raws[i]?.length ?? 0;
        const judging = this.#judge(
          scope,
          keys[i] as string,
          envelope,
          bytes,
          cells,
          fresh,
          counters,
          refreshAhead,
        );
        const judged = judging instanceof Promise ? await judging : judging;
        out.push(
          judged.fresh
            ? { found: true, cells, snapshot, ...judged.entry }
            : { found: false, cells, snapshot, redisFailed: false, stale: judged.entry },
        );
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
  prepareWrite(
    scope: Scope,
    key: string,
    value: unknown,
    timing: { ttlMs: number; graceMs: number; refreshAhead: number | undefined },
    tags: readonly string[] | undefined,
    counters: NamespaceCounters,
    snapshot?: { cells: VersionCell[]; versions: number[] },
  ): PreparedWrite | Promise<PreparedWrite> {
    const prepared = (cells: VersionCell[], versions: number[]): PreparedWrite => ({
      key,
      value,
      ttlMs: this.#jitter(timing.ttlMs),
      graceMs: timing.graceMs,
      tags: tags ?? [],
      refreshAhead: timing.refreshAhead,
      cells,
      versions,
    });
    // Synchronous when the versions are already known (a fill after a read, the usual case):
    // no promise and no microtask hop on the miss path.
    if (snapshot !== undefined && snapshot.cells.length > 0)
      return prepared(snapshot.cells, snapshot.versions);
    const cells = this.#cellsFor(scope, tags);
    if (cells.every((c) => c.known) || this.gateway === undefined) {
      return prepared(cells, this.versions.snapshot(cells));
    }
    return this.refreshUnknown(cells, counters).then(() => prepared(cells, this.versions.snapshot(cells)));
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
   * `atomic`) together with the bus message that drops other instances' copies. Encoding errors
   * are thrown before anything is stored; Redis errors fall back and the write is kept for replay.
   * With `awaitRedis` false the Redis write goes on in the background: used after a read that
   * found Redis failing, so one call never waits for two Redis timeouts. With `announce` false no
   * bus message is sent: for a fill after a cold miss, where Redis held no entry, so no other
   * instance can hold a copy still fresh (their copies are trusted no longer than the Redis entry
   * they came from lives, barring Redis evicting it early; `memory.maxTtl` bounds that case).
   */
  async write(
    scope: Scope,
    writes: readonly PreparedWrite[],
    counters: NamespaceCounters,
    atomic: boolean,
    awaitRedis = true,
    announce = true,
  ): Promise<void> {
    const now = Date.now();
    const chainLength = scope.chain.length;
    const encoded: DriverWrite[] = writes.map((w) => {
      const tagVersions = w.tags.length > 0 ? tagRecord(w.tags, w.versions, chainLength) : undefined;
      const value = this.codec.encode(
        {
          value: w.value,
          createdAt: now,
          expiresAt: now + w.ttlMs,
          graceUntil: now + w.ttlMs + w.graceMs,
          scopeVersions: w.versions.slice(0, chainLength),
          tagVersions,
        },
        w.key,
      );
      // Redis keeps the entry through its grace period.
      return { key: w.key, value, ttlMs: w.ttlMs + w.graceMs };
    });
    writes.forEach((w, i) => {
      const entry = {
        value: w.value,
        createdAt: now,
        expiresAt: now + w.ttlMs,
        graceUntil: now + w.ttlMs + w.graceMs,
      };
      this.fillMemory(
        scope,
        w.key,
        entry,
        w.cells,
        w.versions,
        (encoded[i] as DriverWrite).value.length,
        now,
        w.refreshAhead,
      );
    });
    counters.sets += writes.length;
    if (this.gateway === undefined) return;
    const redisWrite = this.#writeRedis(encoded, counters, atomic, announce);
    if (awaitRedis) await redisWrite;
    else this.#track(redisWrite);
  }

  async #writeRedis(
    encoded: readonly DriverWrite[],
    counters: NamespaceCounters,
    atomic: boolean,
    announce: boolean,
  ): Promise<void> {
    if (this.gateway === undefined) return;
    const keys = encoded.map((w) => w.key);
    const message = announce ? this.bus?.message(keys) : undefined;
    try {
      await this.gateway.run(atomic ? 'setAtomic' : 'set', counters, (d) => {
        const only = encoded.length === 1 && !atomic ? (encoded[0] as DriverWrite) : undefined;
        const stored =
          only !== undefined ? d.set(only.key, only.value, only.ttlMs) : d.setMany(encoded, atomic);
        return Promise.all([stored, this.#publish(d, message)]);
      });
      this.#pendingWrites.settled(keys);
    } catch (error) {
      if (fallbackReason(error) === undefined) {
        // Refused outright (not Redis failing): the caller gets the error, so nothing may stay.
        for (const key of keys) this.memory?.delete(key);
        throw error;
      }
      this.fallback(error, 'set', counters);
      this.#pendingWrites.addWrites(encoded, Date.now());
      if (announce) this.#keepForPublish(keys);
    }
  }

  /** Deletes keys from both tiers, and from other instances' memory over the bus. */
  async delete(keys: readonly string[], counters: NamespaceCounters): Promise<void> {
    for (const key of keys) this.memory?.delete(key);
    counters.deletes += keys.length;
    if (this.gateway === undefined) return;
    const message = this.bus?.message(keys);
    try {
      await this.gateway.run('delete', counters, (d) =>
        Promise.all([d.unlink(keys), this.#publish(d, message)]),
      );
      this.#pendingWrites.settled(keys);
    } catch (error) {
      this.fallback(error, 'delete', counters);
      this.#pendingWrites.addDeletes(keys);
      this.#keepForPublish(keys);
    }
  }

  /**
   * Bumps version counters: every entry recorded under the old versions becomes a miss. Applied
   * locally at once and announced on the bus; when Redis cannot be reached the bump is replayed
   * once it can.
   */
  async bump(cells: readonly VersionCell[], counters: NamespaceCounters): Promise<void> {
    if (this.gateway === undefined) {
      for (const cell of cells) this.versions.bumpLocally(cell, false);
      return;
    }
    try {
      await this.#bumpRemote(cells, counters, 'bump');
    } catch (error) {
      this.fallback(error, 'bump', counters);
      for (const cell of cells) {
        if (!cell.pendingBump) this.#pendingBumps += 1;
        this.versions.bumpLocally(cell, true);
      }
    }
  }

  async #bumpRemote(
    cells: readonly VersionCell[],
    counters: NamespaceCounters,
    operation: string,
  ): Promise<void> {
    const gateway = this.gateway as RedisGateway;
    const values = await gateway.run(operation, counters, (d) => d.incrBy(cells.map(keyOf), bumpIncrement()));
    cells.forEach((cell, i) => {
      this.versions.bumped(cell, values[i] as number);
    });
    const message = this.bus?.message(
      [],
      cells.map((cell, i) => [cell.key, values[i] as number] as const),
    );
    if (message !== undefined) {
      // Best effort: a peer that misses it still reads the new version from Redis on its next read.
      await gateway
        .run('publish', counters, async (d) => this.#publish(d, message))
        .catch((error: unknown) => {
          this.fallback(error, 'publish', counters);
        });
    }
  }

  /**
   * Called after each successful Redis call: replays, once at a time, what failed while Redis was
   * unavailable: version bumps first (so replayed writes are judged against them), then writes,
   * deletes and the bus messages other instances missed.
   */
  onRedisSuccess(): void {
    if (this.#replaying || this.gateway === undefined) return;
    if (this.#pendingBumps === 0 && this.#pendingWrites.size === 0 && this.#pendingPublish.size === 0) return;
    this.#replaying = true;
    const counters = this.stats.forNamespace('(root)');
    this.#track(
      this.#replay(counters)
        .catch((error: unknown) => this.fallback(error, 'replay', counters))
        .finally(() => {
          this.#replaying = false;
        }),
    );
  }

  async #replay(counters: NamespaceCounters): Promise<void> {
    const gateway = this.gateway as RedisGateway;
    const bumps = this.versions.pending();
    if (bumps.length > 0) {
      await this.#bumpRemote(bumps, counters, 'replayBumps');
      this.#pendingBumps = Math.max(0, this.#pendingBumps - bumps.length);
    }
    // Entries written under a local marker (a bump not yet in Redis) match nothing: skip them.
    const { writes, deletes } = this.#pendingWrites.drain(Date.now());
    const toPublish = [...this.#pendingPublish];
    this.#pendingPublish.clear();
    // In pages, one round trip each: callers' commands interleave instead of queueing behind
    // thousands of replayed writes on the same connection.
    let done = 0;
    try {
      for (; done < writes.length; done += REPLAY_PAGE) {
        const page = writes.slice(done, done + REPLAY_PAGE);
        await gateway.run('replay', counters, (d) => d.setMany(page, false));
      }
      await gateway.run('replay', counters, (d) =>
        Promise.all([
          deletes.length > 0 ? d.unlink(deletes) : undefined,
          this.#publish(d, this.bus?.message(toPublish)),
        ]),
      );
    } catch (error) {
      this.#pendingWrites.addWrites(writes.slice(done), Date.now());
      this.#pendingWrites.addDeletes(deletes);
      this.#keepForPublish(toPublish);
      throw error;
    }
    if (writes.length + deletes.length + bumps.length > 0) {
      this.events.emit('replayed', { writes: writes.length, deletes: deletes.length, bumps: bumps.length });
      this.options.logger.info(
        { writes: writes.length, deletes: deletes.length, bumps: bumps.length },
        'larder: replayed what failed while Redis was unavailable',
      );
    }
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
      // frees them anyway. Log, do not fail anything.
      this.options.logger.warn(
        { scope: scope.path, err: String(error) },
        'larder: reclaim after clear() stopped',
      );
    });
    this.#track(task);
  }

  /** Keeps a background task until it settles, so `close()` can wait for it. */
  track(task: Promise<unknown>): void {
    this.#track(task);
  }

  #track(task: Promise<unknown>): void {
    const settled: Promise<void> = task
      .then(
        () => undefined,
        (error: unknown) => {
          // Background work has no caller to tell; the failure is logged and the task dropped.
          this.options.logger.error({ err: String(error) }, 'larder: background task failed');
        },
      )
      .finally(() => this.#background.delete(settled));
    this.#background.add(settled);
  }

  /** Counts and reports a Redis failure that was absorbed; rethrows anything else. */
  fallback(error: unknown, operation: string, counters: NamespaceCounters): void {
    const reason = fallbackReason(error);
    if (reason === undefined) throw error;
    counters.fallbacks += 1;
    this.tracing.fallback(reason);
    this.events.emit('fallback', { operation, namespace: counters.name, reason });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.bus?.close();
    await Promise.allSettled([...this.#background]);
    this.inflight.clear();
    this.memory?.clear();
    this.versions.clear();
  }

  #publish(driver: RedisDriver, message: string | undefined): Promise<void> | undefined {
    return message === undefined || this.bus === undefined
      ? undefined
      : driver.publish(this.bus.channel, message);
  }

  #keepForPublish(keys: readonly string[]): void {
    if (this.bus === undefined) return;
    for (const key of keys) this.#pendingPublish.add(key);
    // Past the write queue's bound, peers flush on their own bus reconnection anyway.
    if (
      this.#pendingPublish.size > (this.options.redis === false ? 0 : this.options.redis.maxPendingWrites)
    ) {
      this.#pendingPublish.clear();
    }
  }

  #jitter(ttlMs: number): number {
    const jitter = this.options.ttlJitter;
    return jitter === 0 ? ttlMs : Math.max(1, Math.round(ttlMs * (1 - Math.random() * jitter)));
  }

  #cellsFor(scope: Scope, tags: readonly string[] | undefined): VersionCell[] {
    const chain = this.versions.scopeChain(scope);
    if (tags === undefined || tags.length === 0) return chain;
    return [...chain, ...tags.map((t) => this.versions.tag(scope, t))];
  }

  /** Applies versions read from Redis: `remote[from + i]` is the value of `cells[i]`. */
  #observe(cells: readonly VersionCell[], remote: ReadonlyArray<StoredValue | null>, from = 0): void {
    for (let i = 0; i < cells.length; i++) {
      const value = remote[from + i];
      this.versions.observe(
        cells[i] as VersionCell,
        value === null || value === undefined ? null : value.toString(),
      );
    }
  }

  /**
   * A cache that writes text met binary envelopes (another instance uses msgpack or compression, as
   * during a rolling change of codec): read them again as bytes, which text decoding would mangle.
   */
  async #rereadAsBytes(keys: string[], counters: NamespaceCounters): Promise<Array<StoredValue | null>> {
    const gateway = this.gateway as RedisGateway;
    return gateway.run('get', counters, (d): Promise<Array<StoredValue | null>> =>
      d.mgetBuffers === undefined ? d.mget(keys) : d.mgetBuffers(keys),
    );
  }

  /** MGET of entries (and versions): as bytes when the codec stores binary envelopes. */
  #mget(driver: RedisDriver, keys: string[]): Promise<Array<StoredValue | null>> {
    // createCache refuses binary codecs for drivers without mgetBuffers.
    return this.codec.binary && driver.mgetBuffers !== undefined
      ? driver.mgetBuffers(keys)
      : driver.mget(keys);
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
   * Decodes and judges a stored entry against current versions: `fresh` (and put in memory),
   * stale (expired but within grace: returned for fail-safe, not put in memory) or rejected
   * (`entry` undefined). Versions are compared only with values read in this same read (`fresh`
   * cells): tag versions not read with the entry are read now, never taken from an older read.
   */
  #judge(
    scope: Scope,
    key: string,
    envelope: Envelope | undefined,
    rawBytes: number,
    chainAndTags: readonly VersionCell[],
    fresh: ReadonlySet<VersionCell> | undefined,
    counters: NamespaceCounters,
    refreshAhead: number | undefined,
  ): Judged | Promise<Judged> {
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
    if (envelope.graceUntil <= now) return REJECTED;
    const chain = scope.chain.length;
    if (envelope.scopeVersions.length !== chain) return REJECTED;
    for (let i = 0; i < chain; i++) {
      if ((chainAndTags[i] as VersionCell).value !== envelope.scopeVersions[i]) return REJECTED;
    }
    const entry: RemoteEntry = {
      value: envelope.value,
      createdAt: envelope.createdAt,
      expiresAt: envelope.expiresAt,
      graceUntil: envelope.graceUntil,
    };
    if (envelope.tagVersions !== undefined) {
      return this.#judgeTags(
        scope,
        key,
        envelope,
        entry,
        rawBytes,
        chainAndTags,
        fresh,
        counters,
        refreshAhead,
      );
    }
    if (envelope.expiresAt <= now) return { fresh: false, entry };
    // Without tags the entry shares its scope's cell and version arrays (memory per entry).
    const cells =
      chainAndTags.length === chain ? (chainAndTags as VersionCell[]) : chainAndTags.slice(0, chain);
    counters.hitsRedis += 1;
    this.fillMemory(scope, key, entry, cells, this.versions.snapshot(cells), rawBytes, now, refreshAhead);
    return { fresh: true, entry };
  }

  /** The rest of {@link #judge} for an entry written with tags: their versions must match too. */
  async #judgeTags(
    scope: Scope,
    key: string,
    envelope: Envelope,
    entry: RemoteEntry,
    rawBytes: number,
    chainAndTags: readonly VersionCell[],
    fresh: ReadonlySet<VersionCell> | undefined,
    counters: NamespaceCounters,
    refreshAhead: number | undefined,
  ): Promise<Judged> {
    const chain = scope.chain.length;
    const tags = Object.entries(envelope.tagVersions ?? {});
    const cells = chainAndTags.slice(0, chain);
    const versions = [...envelope.scopeVersions];
    const tagCells = tags.map(([tag]) => this.versions.tag(scope, tag));
    // Without `fresh`, the cells read with the entry are exactly `chainAndTags`.
    const unread = tagCells.filter((c) => !(fresh === undefined ? chainAndTags.includes(c) : fresh.has(c)));
    if (unread.length > 0 && this.gateway !== undefined) {
      const remote = await this.gateway.run('tagVersions', counters, (d) => d.mget(unread.map(keyOf)));
      this.#observe(unread, remote);
    }
    for (let i = 0; i < tags.length; i++) {
      const cell = tagCells[i] as VersionCell;
      const recorded = (tags[i] as [string, number])[1];
      if (cell.value !== recorded) return REJECTED;
      cells.push(cell);
      versions.push(recorded);
    }
    const now = Date.now();
    if (envelope.expiresAt <= now) return { fresh: false, entry };
    counters.hitsRedis += 1;
    this.fillMemory(scope, key, entry, cells, versions, rawBytes, now, refreshAhead);
    return { fresh: true, entry };
  }
}

function keyOf(cell: VersionCell): string {
  return cell.key;
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

/** A binary envelope (first byte 0x00) that arrived as text. */
function isBinaryReadAsText(raw: StoredValue | null): boolean {
  return typeof raw === 'string' && raw.charCodeAt(0) === 0;
}
