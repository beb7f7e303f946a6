import { describe, ErrorCode, LarderError } from '../errors.js';
import type { Scope } from '../keys/scope.js';
import type { NamespaceCounters } from '../telemetry/stats.js';
import { MemoryEntry } from '../tiers/memory-tier.js';
import type { CacheCore, RemoteRead } from './cache-core.js';
import { acquireOrWait } from './distributed-lock.js';
import type { VersionCell } from './versions.js';

/** A function that produces the value on a miss. */
export type Loader<T> = () => T | Promise<T>;

/** The settings of one `getOrSet`, call options merged over the cache's defaults. */
export type LoadSettings = {
  ttlMs: number;
  negativeTtlMs: number;
  graceMs: number;
  graceBackoffMs: number;
  softTimeoutMs: number | undefined;
  hardTimeoutMs: number | undefined;
  refreshAhead: number | undefined;
  tags: readonly string[] | undefined;
  lock: boolean;
};

/** Everything one load needs. */
export type LoadRequest<T> = {
  core: CacheCore;
  scope: Scope;
  counters: NamespaceCounters;
  redisKey: string;
  loader: Loader<T>;
  settings: LoadSettings;
};

/** A value that may be served when the loader cannot deliver: from memory or a stale Redis entry. */
type Fallback = {
  value: unknown;
  createdAt: number;
  expiresAt: number;
  graceUntil: number;
  cells: readonly VersionCell[];
  versions: readonly number[];
};

/**
 * The miss path of `getOrSet`, after the memory tier had nothing fresh:
 * Redis (with its soft timeout when a fallback is at hand) → distributed lock (optional) →
 * loader (soft and hard timeouts) → write. A stale value within grace is served when the loader
 * fails or is slow; without one, loader failures reach the caller as typed errors. Redis failures
 * never do.
 */
export async function loadThrough<T>(request: LoadRequest<T>): Promise<T> {
  const { core, scope, counters, redisKey, settings } = request;
  request.core.assertOpen();
  let fallback: Fallback | undefined = core.memory?.peek(redisKey, Date.now());

  const read = await readRedis(request, fallback !== undefined);
  if (read === 'soft-timeout') {
    // Redis is slow and memory has a value: serve it; the read goes on and refills memory.
    return serveFallback(request, fallback as Fallback, 'redis-slow');
  }
  if (read.found) {
    maybeRefresh(request, read.createdAt, read.expiresAt);
    return read.value as T;
  }
  if (read.stale !== undefined && (fallback === undefined || read.stale.createdAt > fallback.createdAt)) {
    fallback = { ...read.stale, cells: read.cells, versions: read.snapshot };
  }
  // Redis failed and memory holds a copy that has not expired: it is still the right answer.
  if (read.redisFailed) {
    const copy = core.memoryFallback(redisKey, counters);
    if (copy !== undefined) return copy.value as T;
  }

  let release: (() => Promise<void>) | undefined;
  const lock = core.options.redis === false ? false : core.options.redis.lock;
  if (settings.lock && lock !== false && core.gateway !== undefined && !read.redisFailed) {
    const waitedFrom = Date.now();
    const outcome = await acquireOrWait({
      gateway: core.gateway,
      counters,
      lockKey: scope.lockPrefix + redisKey.slice(scope.dataPrefix.length),
      ttlMs: lock.ttlMs,
      pollIntervalMs: lock.pollIntervalMs,
      hasStale: fallback !== undefined,
      read: () => core.readRemote(scope, redisKey, counters, settings.tags, settings.refreshAhead),
      onWait: () => {
        counters.lockWaits++;
      },
      closed: () => core.closed,
    });
    const waitedMs = Date.now() - waitedFrom;
    if (outcome.kind === 'value') {
      core.events.emit('lock:wait', { key: redisKey, namespace: counters.name, waitedMs, outcome: 'value' });
      return outcome.value as T;
    }
    if (outcome.kind === 'stale') {
      core.events.emit('lock:wait', { key: redisKey, namespace: counters.name, waitedMs, outcome: 'stale' });
      return serveFallback(request, fallback as Fallback, 'soft-timeout');
    }
    if (outcome.kind === 'acquired') release = outcome.release;
  }

  return runLoader(request, read, fallback, release);
}

/** Refresh-ahead for an entry read from Redis (the memory hit path checks `refreshAt` itself). */
function maybeRefresh<T>(request: LoadRequest<T>, createdAt: number, expiresAt: number): void {
  const fraction = request.settings.refreshAhead;
  if (fraction === undefined || Date.now() < createdAt + (expiresAt - createdAt) * fraction) return;
  refreshInBackground(request, createdAt);
}

/**
 * Starts one background reload of a key whose entry passed its refresh-ahead point, unless one
 * is running. Callers keep the current value; a newer entry already in Redis (another instance
 * refreshed it) is adopted instead of loading.
 */
export function refreshInBackground<T>(request: LoadRequest<T>, currentCreatedAt: number): void {
  const { core, counters, redisKey } = request;
  if (core.closed || core.refreshing.has(redisKey)) return;
  core.refreshing.add(redisKey);
  counters.refreshes++;
  core.events.emit('refresh', { key: redisKey, namespace: counters.name });
  const refresh = (async () => {
    const read = await core.readRemote(request.scope, redisKey, counters, request.settings.tags, undefined);
    if (read.found && read.createdAt > currentCreatedAt) return;
    // Versions as read before loading: an invalidation during the load makes the result a miss.
    const value = await callLoader(request);
    await write(
      request,
      value,
      { cells: read.cells, versions: read.snapshot },
      !read.found && read.redisFailed,
    );
  })();
  core.track(
    refresh.finally(() => {
      core.refreshing.delete(redisKey);
    }),
  );
}

function readRedis<T>(request: LoadRequest<T>, haveFallback: boolean): Promise<RemoteRead | 'soft-timeout'> {
  const { core, scope, counters, redisKey, settings } = request;
  const reading = core.tracedRead('getOrSet', counters, () =>
    core.readRemote(scope, redisKey, counters, settings.tags, settings.refreshAhead),
  );
  const softMs = core.options.redis === false ? undefined : core.options.redis.softTimeoutMs;
  // Not an async function: the read's own promise is returned as is (no extra microtask hops).
  if (!haveFallback || softMs === undefined) return reading;
  return raceTimeout(reading, softMs).then((outcome) => {
    if (!outcome.timedOut) return outcome.value;
    core.track(reading);
    return 'soft-timeout' as const;
  });
}

/** Runs the loader under its timeouts and writes the result; owns the lock's release. */
async function runLoader<T>(
  request: LoadRequest<T>,
  read: RemoteRead & { found: false },
  fallback: Fallback | undefined,
  release: (() => Promise<void>) | undefined,
): Promise<T> {
  const { core, counters, settings } = request;
  const snapshot = { cells: read.cells, versions: read.snapshot };
  counters.misses++;
  const loading = callLoader(request);
  const softMs = fallback === undefined ? undefined : settings.softTimeoutMs;
  const limitMs = softMs ?? settings.hardTimeoutMs;
  let handedOff = false;
  try {
    let value: T;
    try {
      const outcome =
        limitMs === undefined
          ? { timedOut: false as const, value: await loading }
          : await raceTimeout(loading, limitMs);
      if (!outcome.timedOut) {
        value = outcome.value;
      } else if (softMs !== undefined) {
        // Soft timeout: answer with the stale value; the loader finishes in the background,
        // updates the cache, and only then releases the lock.
        handedOff = true;
        core.track(
          finishInBackground(request, loading, snapshot, read.redisFailed).finally(() => release?.()),
        );
        return serveFallback(request, fallback as Fallback, 'soft-timeout');
      } else {
        throw timeoutError(request, limitMs as number);
      }
    } catch (error) {
      if (fallback !== undefined) return serveFallback(request, fallback, 'error');
      throw error;
    }
    // A cold miss (Redis had no entry, nothing stale anywhere): no other instance holds a fresh
    // copy, so the fill is not announced on the bus (saves the PUBLISH and its fan-out).
    await write(request, value, snapshot, read.redisFailed, fallback !== undefined || read.redisFailed);
    return value;
  } finally {
    if (!handedOff) await release?.();
  }
}

/** Calls the loader once, timed and counted; failures become `E_LOADER_FAILED` with the cause. */
async function callLoader<T>(request: LoadRequest<T>): Promise<T> {
  const { core, counters, redisKey, loader } = request;
  counters.loaderCalls++;
  const startedAt = performance.now();
  try {
    // async wrapper: a loader that throws synchronously is still recorded on the span.
    const value = await core.trace('larder.loader', 'getOrSet', 'loader', counters, async () => loader());
    counters.loaderLatency.recordSince(startedAt);
    return value;
  } catch (error) {
    counters.loaderErrors++;
    core.events.emit('loader:error', { key: redisKey, namespace: counters.name, error });
    throw new LarderError(
      ErrorCode.LoaderFailed,
      `The loader for key ${describe(redisKey)} failed: ${String((error as Error)?.message ?? error)}`,
      { key: redisKey },
      error,
    );
  }
}

/** After a soft timeout: the loader's eventual value still updates the cache (with a hard limit). */
async function finishInBackground<T>(
  request: LoadRequest<T>,
  loading: Promise<T>,
  snapshot: { cells: VersionCell[]; versions: number[] },
  redisFailed: boolean,
): Promise<void> {
  const hardMs = request.settings.hardTimeoutMs;
  const outcome =
    hardMs === undefined
      ? { timedOut: false as const, value: await loading }
      : await raceTimeout(loading, hardMs);
  if (outcome.timedOut) throw timeoutError(request, hardMs as number);
  await write(request, outcome.value, snapshot, redisFailed);
}

async function write<T>(
  request: LoadRequest<T>,
  value: T,
  snapshot: { cells: VersionCell[]; versions: number[] } | undefined,
  redisFailed: boolean,
  announce = true,
): Promise<void> {
  const { core, scope, counters, redisKey, settings } = request;
  const negative = value === null || value === undefined;
  const ttlMs = negative ? settings.negativeTtlMs : settings.ttlMs;
  if (ttlMs === 0 || core.closed) return;
  const preparing = core.prepareWrite(
    scope,
    redisKey,
    value,
    { ttlMs, graceMs: negative ? 0 : settings.graceMs, refreshAhead: settings.refreshAhead },
    settings.tags,
    counters,
    snapshot,
  );
  const prepared = preparing instanceof Promise ? await preparing : preparing;
  await core.write(scope, [prepared], counters, false, !redisFailed, announce);
}

/**
 * Answers with a stale value and backs off: the value is kept in memory as servable for
 * `graceBackoff`, so the next calls get it at once instead of hammering a failing loader.
 */
function serveFallback<T>(
  request: LoadRequest<T>,
  fallback: Fallback,
  reason: 'error' | 'soft-timeout' | 'redis-slow',
): T {
  const { core, counters, redisKey, settings } = request;
  const now = Date.now();
  const expired = now >= fallback.expiresAt;
  if (expired) {
    counters.staleServed++;
    core.events.emit('stale', { key: redisKey, namespace: counters.name, reason });
  } else {
    counters.hitsMemory++;
  }
  if (
    reason === 'error' &&
    core.memory !== undefined &&
    (request.scope.memory || core.gateway === undefined)
  ) {
    const until = Math.min(now + settings.graceBackoffMs, fallback.graceUntil);
    core.memory.set(
      redisKey,
      new MemoryEntry(
        fallback.value,
        fallback.createdAt,
        until,
        fallback.expiresAt,
        fallback.graceUntil,
        fallback.cells,
        fallback.versions,
        undefined,
        expired,
      ),
      0,
    );
  }
  return fallback.value as T;
}

function timeoutError<T>(request: LoadRequest<T>, ms: number): LarderError {
  request.counters.loaderErrors++;
  return new LarderError(
    ErrorCode.LoaderTimeout,
    `The loader for key ${describe(request.redisKey)} did not finish within ${ms} ms (loaderTimeout.hard)`,
    { key: request.redisKey, timeoutMs: ms },
  );
}

/** Races a promise with a timer that is always cleared. */
function raceTimeout<T>(
  promise: Promise<T>,
  ms: number,
): Promise<{ timedOut: false; value: T } | { timedOut: true }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve({ timedOut: true }), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve({ timedOut: false, value });
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
