import { LatencyHistogram, type LatencySummary } from './latency.js';

/**
 * Counters of one namespace, or of one tenant scope inside it. Scoped views hold a direct reference
 * to theirs, so counting on the hot path is a property increment, with no map lookup. A tenant's
 * counters share their namespace's latency histograms and `name` (the namespace path used in events
 * and metric labels), so label cardinality stays bounded by the number of namespaces.
 */
export class NamespaceCounters {
  /** Time spent on round trips to Redis for this namespace. */
  readonly redisLatency: LatencyHistogram;
  /** Time spent in loaders. */
  readonly loaderLatency: LatencyHistogram;

  constructor(
    readonly name: string,
    /** The namespace's counters when these are a tenant's (latency is shared with them). */
    shareLatencyWith?: NamespaceCounters,
  ) {
    this.redisLatency = shareLatencyWith?.redisLatency ?? new LatencyHistogram();
    this.loaderLatency = shareLatencyWith?.loaderLatency ?? new LatencyHistogram();
  }

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

  /** Adds another set of counters' counts to this one's (latency is not added: it is shared). */
  addCounts(other: NamespaceCounters): void {
    this.hitsMemory += other.hitsMemory;
    this.hitsRedis += other.hitsRedis;
    this.misses += other.misses;
    this.sets += other.sets;
    this.deletes += other.deletes;
    this.loaderCalls += other.loaderCalls;
    this.loaderErrors += other.loaderErrors;
    this.fallbacks += other.fallbacks;
    this.redisErrors += other.redisErrors;
    this.timeouts += other.timeouts;
    this.decodeErrors += other.decodeErrors;
    this.staleServed += other.staleServed;
    this.refreshes += other.refreshes;
    this.lockWaits += other.lockWaits;
  }

  /** Hits, misses and the hit rate: the part both snapshots share. */
  #lookups(): Pick<TenantStats, 'hits' | 'misses' | 'hitRate'> {
    const hits = this.hitsMemory + this.hitsRedis;
    const lookups = hits + this.misses;
    return {
      hits: { memory: this.hitsMemory, redis: this.hitsRedis, total: hits },
      misses: this.misses,
      hitRate: lookups === 0 ? 0 : hits / lookups,
    };
  }

  /** The counts of a tenant scope (no latency: it is kept per namespace). */
  tenantSnapshot(): TenantStats {
    return {
      ...this.#lookups(),
      sets: this.sets,
      deletes: this.deletes,
      loaderCalls: this.loaderCalls,
      loaderErrors: this.loaderErrors,
      fallbacks: this.fallbacks,
      staleServed: this.staleServed,
    };
  }

  snapshot(): NamespaceStats {
    return {
      ...this.#lookups(),
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

/** The counts of one tenant scope in `stats().tenants`. */
export type TenantStats = {
  hits: { memory: number; redis: number; total: number };
  misses: number;
  hitRate: number;
  sets: number;
  deletes: number;
  loaderCalls: number;
  loaderErrors: number;
  fallbacks: number;
  staleServed: number;
};

/**
 * Owns the counters: per namespace, bounded by `maxNamespaces` (later ones share `(other)`), and
 * per tenant scope, bounded by `maxTenants` (later ones, or all when it is 0, count in their
 * namespace only).
 */
export class StatsRegistry {
  readonly #byNamespace = new Map<string, NamespaceCounters>();
  // Tenant scope path (`leads/@org-1`) → its counters, and the namespace path each belongs to.
  readonly #byTenant = new Map<string, { namespace: string; counters: NamespaceCounters }>();
  readonly #maxNamespaces: number;
  readonly #maxTenants: number;

  constructor(maxNamespaces: number, maxTenants = 0) {
    this.#maxNamespaces = maxNamespaces;
    this.#maxTenants = maxTenants;
  }

  /**
   * The counters of a tenant scope (`path`, e.g. `leads/@org-1`) in namespace `namespacePath`,
   * created on first use; its namespace's own counters once `maxTenants` scopes are tracked.
   */
  forTenant(namespacePath: string, path: string): NamespaceCounters {
    const known = this.#byTenant.get(path);
    if (known !== undefined) return known.counters;
    const namespace = this.forNamespace(namespacePath);
    if (this.#byTenant.size >= this.#maxTenants) return namespace;
    const counters = new NamespaceCounters(namespace.name, namespace);
    this.#byTenant.set(path, { namespace: namespace.name, counters });
    return counters;
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
    tenants: Record<string, TenantStats>;
  } {
    const namespaces: Record<string, NamespaceStats> = {};
    const tenants: Record<string, TenantStats> = {};
    // A namespace's figures include its tracked tenants' counts.
    const sums = new Map<string, NamespaceCounters>();
    for (const [path, { namespace, counters }] of this.#byTenant) {
      tenants[path] = counters.tenantSnapshot();
      const own = this.#byNamespace.get(namespace) as NamespaceCounters;
      let sum = sums.get(namespace);
      if (sum === undefined) {
        sum = new NamespaceCounters(namespace, own);
        sum.addCounts(own);
        sums.set(namespace, sum);
      }
      sum.addCounts(counters);
    }
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
      const s = (sums.get(name) ?? counters).snapshot();
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
    return { totals, namespaces, tenants };
  }
}
