import { CacheScope, type Duration, ErrorCode, isLarderError, LarderError } from '../index.js';

/** Options of {@link migrateFromMap}. */
export type MigrateFromMapOptions<K, V> = {
  /** Where entries go: a cache, a namespace, or any scoped view. */
  target: CacheScope;
  /**
   * The tenant of an entry, or `undefined` to write it to `target` itself. Entries of tenant `t`
   * are written through `target.forTenant(t)`. Throwing skips the entry.
   * @default every entry goes to `target`
   * @example (key) => key.split(':')[0]   // legacy keys like `${orgId}:${phone}`
   */
  tenantOf?: (key: K, value: V) => string | undefined;
  /**
   * The cache key of an entry, within its tenant. Throwing skips the entry.
   * @default string keys as they are, numbers as decimal strings; other keys are skipped
   * @example (key) => key.slice(key.indexOf(':') + 1)   // drop the `${orgId}:` part
   */
  keyOf?: (key: K) => string;
  /** TTL of every migrated entry. @default the cache's `defaultTtl` */
  ttl?: Duration;
  /**
   * Entries per `setMany` (one Redis round trip), from 1 to 10000. Entries of different tenants
   * are never in one write.
   * @default 500
   */
  batchSize?: number;
  /**
   * Longest tenant id accepted, in UTF-16 units (Larder itself accepts up to 256). A tenant id
   * this long is almost always a `tenantOf` that took the whole key.
   * @default 256
   */
  maxTenantLength?: number;
  /**
   * Called once after validation and after every write with the entries handled so far (written
   * or skipped). `done` never decreases and ends at `total`. Throwing aborts the migration (what
   * was written stays; a re-run is safe).
   */
  onProgress?: (progress: MigrationProgress) => void;
};

/**
 * What {@link migrateFromMap} reads: a `Map`, or anything with a `size` that iterates `[key, value]`
 * pairs the same way (an `LRUCache` from lru-cache, for instance).
 */
export type MapLike<K, V> = Iterable<readonly [K, V]> & { readonly size: number };

/** Progress of {@link migrateFromMap}. */
export type MigrationProgress = { done: number; total: number };

/** An entry {@link migrateFromMap} did not write. */
export type MigrationSkip = {
  /** The Map key, as a string. */
  key: string;
  /** Why, in words. */
  reason: string;
  /** The Larder error code of the problem (`E_INVALID_KEY`, `E_INVALID_VALUE`, ...). */
  code: ErrorCode;
};

/** What {@link migrateFromMap} did. `written + skipped.length === total`. */
export type MigrationReport = {
  /** Entries in the Map when the migration started. */
  total: number;
  /** Entries stored. */
  written: number;
  /** Entries not stored, in Map order. */
  skipped: MigrationSkip[];
};

const DEFAULT_BATCH_SIZE = 500;
const MAX_BATCH_SIZE = 10_000;
const DEFAULT_MAX_TENANT_LENGTH = 256;

// Input problems of one entry: the entry is skipped, the migration goes on. Any other error (a
// closed cache, a bad `ttl` option) is the migration's and is thrown.
const ENTRY_ERRORS: ReadonlySet<string> = new Set([
  ErrorCode.InvalidKey,
  ErrorCode.InvalidTenant,
  ErrorCode.InvalidValue,
  ErrorCode.ValueTooLarge,
]);

/** An entry to write; `order` is its position in the Map, to report skips in Map order. */
type Pending = { order: number; mapKey: string; key: string; value: unknown };
type Skip = MigrationSkip & { order: number };
type Group = { scope: CacheScope; entries: Pending[]; keys: Map<string, string> };

/**
 * Copies a legacy in-memory `Map` cache into Larder, in batches of one `setMany` (one round trip)
 * per tenant. Entries present when it is called are migrated; later changes to the Map are not.
 *
 * Entries that cannot be stored are skipped and listed with a reason, never thrown: keys that are
 * empty, too long (`maxKeyLength`) or not strings; tenant ids that are empty or too long; values
 * JSON cannot hold (`undefined`, functions, symbols, BigInt, circular structures), would silently
 * empty (`Map` and `Set` become `{}`) or that exceed `maxValueBytes`; and Map keys that map to the
 * same cache entry as an earlier one. A batch that fails on one bad entry is split until the bad
 * entry is alone, so good entries are still written with few round trips.
 *
 * Re-running is safe: entries are overwritten with the same values (and their TTL restarts).
 *
 * Larder absorbs Redis failures: entries written while Redis is down reach only this process's
 * memory tier and Larder's bounded replay queue (`maxPendingWrites`), yet count as written. Check
 * `cache.health()` first and watch the cache's `fallback` events during the run.
 *
 * @throws LarderError `E_INVALID_OPTIONS` for bad options, `E_INVALID_TTL` for a bad `ttl`,
 * `E_CLOSED` if the cache is closed.
 * @example
 * const report = await migrateFromMap(conversationContexts, {
 *   target: cache.namespace('conversations'),
 *   tenantOf: (key) => key.slice(0, key.indexOf(':')),
 *   keyOf: (key) => key.slice(key.indexOf(':') + 1),
 *   ttl: '24h',
 * });
 */
export async function migrateFromMap<K, V>(
  map: MapLike<K, V>,
  options: MigrateFromMapOptions<K, V>,
): Promise<MigrationReport> {
  const { target, tenantOf, keyOf, ttl, onProgress } = options;
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const maxTenantLength = options.maxTenantLength ?? DEFAULT_MAX_TENANT_LENGTH;
  validateOptions(map, target, batchSize, maxTenantLength);

  const skipped: Skip[] = [];
  const groups = new Map<string | undefined, Group>();
  let order = 0;
  for (const [mapKey, value] of map) {
    const index = order++;
    const shown = showKey(mapKey);
    const resolved = resolveEntry(mapKey, value, keyOf, tenantOf, maxTenantLength);
    if ('code' in resolved) {
      skipped.push({ key: shown, ...resolved, order: index });
      continue;
    }
    const { tenant, key } = resolved;
    let group = groups.get(tenant);
    if (group === undefined) {
      group = {
        scope: tenant === undefined ? target : target.forTenant(tenant),
        entries: [],
        keys: new Map(),
      };
      groups.set(tenant, group);
    }
    const earlier = group.keys.get(key);
    if (earlier !== undefined) {
      const reason = `maps to the same cache entry as the earlier Map key ${show(earlier)}`;
      skipped.push({ key: shown, reason, code: ErrorCode.InvalidKey, order: index });
      continue;
    }
    group.keys.set(key, shown);
    group.entries.push({ order: index, mapKey: shown, key, value });
  }

  // The loop above does not await: it saw the Map as it was when called.
  const total = order;
  let done = skipped.length;
  let written = 0;
  onProgress?.({ done, total });
  for (const group of groups.values()) {
    for (let start = 0; start < group.entries.length; start += batchSize) {
      const batch = group.entries.slice(start, start + batchSize);
      const failed = await writeBatch(group.scope, batch, ttl);
      skipped.push(...failed);
      written += batch.length - failed.length;
      done += batch.length;
      onProgress?.({ done, total });
    }
  }
  skipped.sort((a, b) => a.order - b.order);
  return { total, written, skipped: skipped.map(({ key, reason, code }) => ({ key, reason, code })) };
}

/**
 * The tenant and cache key of an entry, or why it cannot be stored. Everything checked here is
 * known without Redis; what only `setMany` knows (`maxKeyLength`, `maxValueBytes`) is found when
 * writing.
 */
function resolveEntry<K, V>(
  mapKey: K,
  value: V,
  keyOf: ((key: K) => string) | undefined,
  tenantOf: ((key: K, value: V) => string | undefined) | undefined,
  maxTenantLength: number,
): { tenant: string | undefined; key: string } | { code: ErrorCode; reason: string } {
  let key: string;
  try {
    key = keyOf === undefined ? defaultKey(mapKey) : keyOf(mapKey);
  } catch (error) {
    return { code: ErrorCode.InvalidKey, reason: `keyOf threw: ${messageOf(error)}` };
  }
  if (typeof key !== 'string' || key.length === 0) {
    return {
      code: ErrorCode.InvalidKey,
      reason: `the cache key is ${show(key)}; expected a non-empty string`,
    };
  }
  let tenant: string | undefined;
  try {
    tenant = tenantOf?.(mapKey, value);
  } catch (error) {
    return { code: ErrorCode.InvalidTenant, reason: `tenantOf threw: ${messageOf(error)}` };
  }
  if (tenant !== undefined && (typeof tenant !== 'string' || tenant.length === 0)) {
    return {
      code: ErrorCode.InvalidTenant,
      reason: `the tenant id is ${show(tenant)}; expected a non-empty string`,
    };
  }
  if (tenant !== undefined && tenant.length > maxTenantLength) {
    return {
      code: ErrorCode.InvalidTenant,
      reason: `the tenant id is ${tenant.length} characters long, over maxTenantLength (${maxTenantLength})`,
    };
  }
  const problem = unstorable(value);
  if (problem !== undefined) return { code: ErrorCode.InvalidValue, reason: problem };
  return { tenant, key };
}

/**
 * Writes a batch with one `setMany`. `setMany` stores nothing when any entry is invalid, so a
 * failed batch is split in halves until each bad entry is alone: k bad entries cost about
 * 2·k·log2(batch) extra calls, and failed calls write nothing to Redis.
 */
async function writeBatch(
  scope: CacheScope,
  batch: readonly Pending[],
  ttl: Duration | undefined,
): Promise<Skip[]> {
  try {
    await scope.setMany(batch.map((e) => ({ key: e.key, value: e.value, ttl })));
    return [];
  } catch (error) {
    if (!isLarderError(error) || !ENTRY_ERRORS.has(error.code)) throw error;
    const only = batch[0];
    if (batch.length === 1 && only !== undefined) {
      return [{ key: only.mapKey, reason: error.message, code: error.code, order: only.order }];
    }
    const half = Math.ceil(batch.length / 2);
    return [
      ...(await writeBatch(scope, batch.slice(0, half), ttl)),
      ...(await writeBatch(scope, batch.slice(half), ttl)),
    ];
  }
}

/** Why a value cannot be stored as JSON without loss, or `undefined` when it can. */
function unstorable(value: unknown): string | undefined {
  if (value === undefined) return 'the value is undefined, which JSON cannot hold';
  if (typeof value === 'function' || typeof value === 'symbol') {
    return `the value is a ${typeof value}, which JSON cannot hold`;
  }
  let lossy: string | undefined;
  try {
    JSON.stringify(value, (property, v: unknown) => {
      if (lossy === undefined && (v instanceof Map || v instanceof Set)) {
        const where = property === '' ? 'the value' : `property ${JSON.stringify(property)}`;
        lossy = `${where} is a ${v instanceof Map ? 'Map' : 'Set'}, which JSON would store as {}`;
      }
      return v;
    });
  } catch (error) {
    // BigInt ("Do not know how to serialize a BigInt") and circular structures.
    return `the value cannot be serialized to JSON: ${messageOf(error)}`;
  }
  return lossy;
}

function defaultKey(key: unknown): string {
  if (typeof key === 'string') return key;
  if (typeof key === 'number' && Number.isFinite(key)) return String(key);
  throw new Error(`the Map key is ${show(key)}; pass keyOf to turn such keys into strings`);
}

function validateOptions(map: unknown, target: unknown, batchSize: number, maxTenantLength: number): void {
  const sized = map as Partial<MapLike<unknown, unknown>> | null | undefined;
  if (typeof sized?.size !== 'number' || typeof sized[Symbol.iterator] !== 'function') {
    throw invalidOption(`Expected \`map\` to be a Map, got ${show(map)}`, 'map');
  }
  if (!(target instanceof CacheScope)) {
    throw invalidOption(
      `Expected \`target\` to be a cache or a scoped view of one (createCache(), namespace(), forTenant()), got ${show(target)}`,
      'target',
    );
  }
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_SIZE) {
    throw invalidOption(
      `Expected \`batchSize\` to be an integer from 1 to ${MAX_BATCH_SIZE}, got ${show(batchSize)}`,
      'batchSize',
    );
  }
  if (!Number.isInteger(maxTenantLength) || maxTenantLength < 1) {
    throw invalidOption(
      `Expected \`maxTenantLength\` to be an integer from 1 and up, got ${show(maxTenantLength)}`,
      'maxTenantLength',
    );
  }
}

function invalidOption(message: string, option: string): LarderError {
  return new LarderError(ErrorCode.InvalidOptions, message, { option });
}

/** A Map key as a string for the report. */
function showKey(key: unknown): string {
  if (typeof key === 'string') return key;
  try {
    return String(key);
  } catch {
    return `(a key of type ${typeof key})`;
  }
}

/** A value in an error message, short. */
function show(value: unknown): string {
  if (typeof value === 'string') {
    return value.length > 60
      ? `${JSON.stringify(value.slice(0, 60))}… (${value.length} characters)`
      : JSON.stringify(value);
  }
  if (typeof value === 'number') return `${value} (number)`;
  if (value === null) return 'null';
  return `a value of type ${typeof value}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
