import { LatencyHistogram, type LatencySummary } from './latency.js';

/**
 * Counters of one namespace. Scoped views hold a direct reference to theirs, so counting on the hot
 * path is a property increment, with no map lookup. Tenants share their namespace's counters: label
 * cardinality stays bounded by the number of namespaces, not of tenants.
 */
export class NamespaceCounters {
  constructor(readonly name: string) {}

  hitsMemory = 0;
  hitsRedis = 0;
  misses = 0;
  sets = 0;
  deletes = 0;
  loaderCalls = 0;
  loaderErrors = 0;
  /** Calls served without Redis because it was down, slow, overloaded or disabled. */
  fallbacks = 0;
  redisErrors = 0;
  timeouts = 0;
  decodeErrors = 0;
  /** Stale values served (loader failed or slow, within grace). */
  staleServed = 0;
  /** Background reloads started by refresh-ahead. */
  refreshes = 0;
  /** Calls that waited for another process's lock. */
  lockWaits = 0;
  /** Time spent on round trips to Redis for this namespace. */
  readonly redisLatency = new LatencyHistogram();
  /** Time spent in loaders. */
  readonly loaderLatency = new LatencyHistogram();

  snapshot(): NamespaceStats {
    const hits = this.hitsMemory + this.hitsRedis;
    const lookups = hits + this.misses;
    return {
      hits: { memory: this.hitsMemory, redis: this.hitsRedis, total: hits },
      misses: this.misses,
      hitRate: lookups === 0 ? 0 : hits / lookups,
      sets: this.sets,
      deletes: this.deletes,
      loader: {
        calls: this.loaderCalls,
        errors: this.loaderErrors,
        latencyMicros: this.loaderLatency.summary(),
      },
      fallbacks: this.fallbacks,
      redisErrors: this.redisErrors,
      timeouts: this.timeouts,
      decodeErrors: this.decodeErrors,
      staleServed: this.staleServed,
      refreshes: this.refreshes,
      lockWaits: this.lockWaits,
      redisLatencyMicros: this.redisLatency.summary(),
    };
  }
}

/** A point-in-time copy of one namespace's counters. */
export type NamespaceStats = {
  hits: { memory: number; redis: number; total: number };
  misses: number;
  /** hits / (hits + misses), 0 when there were no lookups. */
  hitRate: number;
  sets: number;
  deletes: number;
  loader: { calls: number; errors: number; latencyMicros: LatencySummary };
  fallbacks: number;
  redisErrors: number;
  timeouts: number;
  decodeErrors: number;
  staleServed: number;
  refreshes: number;
  lockWaits: number;
  redisLatencyMicros: LatencySummary;
};

/** Owns the per-namespace counters; bounded by `maxNamespaces` (later ones share `(other)`). */
export class StatsRegistry {
  readonly #byNamespace = new Map<string, NamespaceCounters>();
  readonly #maxNamespaces: number;

  constructor(maxNamespaces: number) {
    this.#maxNamespaces = maxNamespaces;
  }

  /** The counters of a namespace path, created on first use. */
  forNamespace(path: string): NamespaceCounters {
    let counters = this.#byNamespace.get(path);
    if (counters !== undefined) return counters;
    const label = this.#byNamespace.size >= this.#maxNamespaces ? '(other)' : path;
    counters = this.#byNamespace.get(label) ?? new NamespaceCounters(label);
    this.#byNamespace.set(label, counters);
    return counters;
  }

  /** Every namespace's snapshot, and their sum. */
  snapshot(): {
    totals: Omit<NamespaceStats, 'redisLatencyMicros' | 'loader'> & {
      loader: { calls: number; errors: number };
    };
    namespaces: Record<string, NamespaceStats>;
  } {
    const namespaces: Record<string, NamespaceStats> = {};
    const totals = {
      hits: { memory: 0, redis: 0, total: 0 },
      misses: 0,
      hitRate: 0,
      sets: 0,
      deletes: 0,
      loader: { calls: 0, errors: 0 },
      fallbacks: 0,
      redisErrors: 0,
      timeouts: 0,
      decodeErrors: 0,
      staleServed: 0,
      refreshes: 0,
      lockWaits: 0,
    };
    for (const [name, counters] of this.#byNamespace) {
      const s = counters.snapshot();
      namespaces[name] = s;
      totals.hits.memory += s.hits.memory;
      totals.hits.redis += s.hits.redis;
      totals.hits.total += s.hits.total;
      totals.misses += s.misses;
      totals.sets += s.sets;
      totals.deletes += s.deletes;
      totals.loader.calls += s.loader.calls;
      totals.loader.errors += s.loader.errors;
      totals.fallbacks += s.fallbacks;
      totals.redisErrors += s.redisErrors;
      totals.timeouts += s.timeouts;
      totals.decodeErrors += s.decodeErrors;
      totals.staleServed += s.staleServed;
      totals.refreshes += s.refreshes;
      totals.lockWaits += s.lockWaits;
    }
    const lookups = totals.hits.total + totals.misses;
    totals.hitRate = lookups === 0 ? 0 : totals.hits.total / lookups;
    return { totals, namespaces };
  }
}
