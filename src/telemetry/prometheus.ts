import {
  Counter,
  Gauge,
  type Metric,
  type OpenMetricsContentType,
  type PrometheusContentType,
  register as defaultRegistry,
  type Registry,
} from 'prom-client';
import type { Cache, CacheStats } from '../cache/cache.js';
import { ErrorCode, LarderError } from '../errors.js';
import type { CircuitState } from '../resilience/circuit-breaker.js';
import type { LatencySummary } from './latency.js';
import type { NamespaceStats } from './stats.js';

/** Options of {@link registerPrometheusMetrics}. */
export type PrometheusOptions = {
  /**
   * The registry to register the collectors in.
   * @default prom-client's global `register`
   */
  registry?: Registry<PrometheusContentType> | Registry<OpenMetricsContentType>;
  /**
   * Prefix of every metric name. Must match `/^[a-zA-Z_:][a-zA-Z0-9_:]*$/`. Give each cache its
   * own prefix (or registry) to expose several caches from one process.
   * @default 'larder_'
   * @example 'orders_cache_'
   */
  prefix?: string;
};

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** `larder_redis_circuit_state` values. */
const CIRCUIT_VALUE: Record<CircuitState, number> = { closed: 0, 'half-open': 1, open: 2 };

// Every transition the breaker makes: pre-set to 0 so rate() sees the first one.
const TRANSITIONS: ReadonlyArray<readonly [CircuitState, CircuitState]> = [
  ['closed', 'open'],
  ['open', 'half-open'],
  ['half-open', 'closed'],
  ['half-open', 'open'],
  ['open', 'closed'],
];

/** Counters per namespace read from `stats().namespaces`, by name without the prefix. */
const NAMESPACE_COUNTERS: ReadonlyArray<readonly [string, string, (s: NamespaceStats) => number]> = [
  ['misses_total', 'Lookups that found no value in memory or Redis.', (s) => s.misses],
  ['sets_total', 'Entries written (set, setMany, getOrSet loads).', (s) => s.sets],
  ['deletes_total', 'Keys deleted.', (s) => s.deletes],
  ['loader_calls_total', 'getOrSet loader runs.', (s) => s.loader.calls],
  ['loader_errors_total', 'getOrSet loader runs that threw or rejected.', (s) => s.loader.errors],
  [
    'fallbacks_total',
    'Calls served without Redis because it failed, timed out, was overloaded or its circuit was open.',
    (s) => s.fallbacks,
  ],
  [
    'redis_errors_total',
    'Redis calls that failed, other than timeouts (connection errors, overload).',
    (s) => s.redisErrors,
  ],
  ['redis_timeouts_total', 'Redis calls that exceeded redis.commandTimeout.', (s) => s.timeouts],
  [
    'decode_errors_total',
    'Stored values that were not Larder envelopes (counted as misses).',
    (s) => s.decodeErrors,
  ],
  ['stale_served_total', 'Stale values served because a loader failed or was slow.', (s) => s.staleServed],
  ['refreshes_total', 'Background reloads started by refresh-ahead.', (s) => s.refreshes],
  ['lock_waits_total', "Calls that waited for another process's lock on a key.", (s) => s.lockWaits],
  [
    'redis_round_trips_total',
    'Redis round trips that succeeded: the samples behind redis_latency_seconds.',
    (s) => s.redisLatencyMicros.count,
  ],
];

/**
 * Exposes a cache's counters to Prometheus through prom-client (an optional peer dependency:
 * `npm i prom-client`). Collectors read `cache.stats()` once per scrape, so nothing is added to
 * the cache's calls. Series are labelled by `namespace` (plus fixed sets such as `tier`), never by
 * key or tenant: their number is bounded by the cache's `maxNamespaces`.
 *
 * Latency is exported as gauges of the p50 and p99 that Larder's HdrHistograms already compute
 * (`quantile` label, in seconds), not as a prom-client Summary, which would observe every call a
 * second time. They are percentiles since the cache was created and cannot be aggregated across
 * instances; see `docs/observability.md`.
 *
 * @returns a function that unregisters every collector and event listener it added. Call it
 * before `cache.close()` if the registry outlives the cache.
 * @throws LarderError `E_INVALID_OPTIONS` for a bad `prefix`; prom-client's error when a metric of
 * the same name is already registered (nothing is left registered then).
 * @example
 * import { registerPrometheusMetrics } from 'larder/prometheus';
 * const unregister = registerPrometheusMetrics(cache, { registry });
 */
export function registerPrometheusMetrics(cache: Cache, options: PrometheusOptions = {}): () => void {
  const registry = options.registry ?? defaultRegistry;
  const prefix = options.prefix ?? 'larder_';
  if (typeof prefix !== 'string' || !METRIC_NAME.test(prefix)) {
    throw new LarderError(
      ErrorCode.InvalidOptions,
      `Expected \`prefix\` to match ${String(METRIC_NAME)}, got ${JSON.stringify(prefix)} (${typeof prefix})`,
      { option: 'prefix' },
    );
  }

  // One snapshot per scrape: prom-client runs every collector in one synchronous pass, so the
  // snapshot is dropped in the microtask after it and all series of a scrape agree.
  let snapshot: CacheStats | undefined;
  const stats = (): CacheStats => {
    if (snapshot === undefined) {
      snapshot = cache.stats();
      queueMicrotask(() => {
        snapshot = undefined;
      });
    }
    return snapshot;
  };

  const metrics: Array<Metric<string>> = [
    new Counter({
      name: `${prefix}hits_total`,
      help: 'Lookups served from a tier (memory or redis).',
      labelNames: ['namespace', 'tier'],
      registers: [],
      collect() {
        this.reset();
        for (const [namespace, s] of Object.entries(stats().namespaces)) {
          this.inc({ namespace, tier: 'memory' }, s.hits.memory);
          this.inc({ namespace, tier: 'redis' }, s.hits.redis);
        }
      },
    }),
    ...NAMESPACE_COUNTERS.map(
      ([name, help, read]) =>
        new Counter({
          name: prefix + name,
          help,
          labelNames: ['namespace'],
          registers: [],
          collect() {
            this.reset();
            for (const [namespace, s] of Object.entries(stats().namespaces)) this.inc({ namespace }, read(s));
          },
        }),
    ),
    latencyGauge(
      `${prefix}redis_latency_seconds`,
      'Redis round-trip time percentiles since the cache was created.',
      stats,
      (s) => s.redisLatencyMicros,
    ),
    latencyGauge(
      `${prefix}loader_latency_seconds`,
      'Successful getOrSet loader run time percentiles since the cache was created.',
      stats,
      (s) => s.loader.latencyMicros,
    ),
    gauge(`${prefix}memory_entries`, 'Entries in the memory tier.', () => stats().memory.entries),
    gauge(`${prefix}memory_bytes`, 'Approximate bytes held by the memory tier.', () => stats().memory.bytes),
    gauge(
      `${prefix}redis_pending_commands`,
      'Redis commands sent and not yet answered.',
      () => stats().redis.pendingCommands,
    ),
    gauge(
      `${prefix}redis_pending_writes`,
      'Writes and deletes kept while Redis was unavailable, waiting to be replayed.',
      () => stats().redis.pendingWrites,
    ),
    gauge(
      `${prefix}bus_up`,
      '1 while the L1 coherence bus is connected, 0 while down; no sample when off.',
      () => {
        const bus = stats().redis.bus;
        return bus === 'off' ? undefined : bus === 'up' ? 1 : 0;
      },
    ),
    gauge(`${prefix}redis_ready`, '1 while the Redis client is connected and ready, else 0.', () =>
      stats().redis.ready ? 1 : 0,
    ),
    gauge(
      `${prefix}redis_switched_off`,
      '1 while Redis is switched off at run time (cache.setRedisEnabled(false)), else 0; no sample when disabled.',
      () => {
        const redis = stats().redis;
        return redis.enabled ? (redis.switchedOff ? 1 : 0) : undefined;
      },
    ),
    gauge(
      `${prefix}redis_circuit_state`,
      'Redis circuit breaker: 0 closed, 1 half-open, 2 open. No sample when Redis is disabled.',
      () => {
        const circuit = stats().redis.circuit;
        return circuit === 'disabled' ? undefined : CIRCUIT_VALUE[circuit];
      },
    ),
  ];

  const fallbacksByReason = new Counter({
    name: `${prefix}fallbacks_by_reason_total`,
    help: 'Calls served without Redis, by reason, counted from the fallback event since registration.',
    labelNames: ['namespace', 'reason'],
    registers: [],
  });
  const transitions = new Counter({
    name: `${prefix}circuit_transitions_total`,
    help: 'Redis circuit breaker state changes, counted from the circuit event since registration.',
    labelNames: ['from', 'to'],
    registers: [],
  });
  for (const [from, to] of TRANSITIONS) transitions.inc({ from, to }, 0);
  metrics.push(fallbacksByReason, transitions);

  const registered: string[] = [];
  try {
    for (const metric of metrics) {
      registry.registerMetric(metric);
      registered.push(nameOf(metric));
    }
  } catch (error) {
    for (const name of registered) registry.removeSingleMetric(name);
    throw error;
  }

  // Both events are rare (Redis trouble), so counting them costs nothing on the hot path. Their
  // `namespace` is the stats label, bounded like the other series.
  const unsubscribe = [
    cache.on('fallback', ({ namespace, reason }) => fallbacksByReason.inc({ namespace, reason })),
    cache.on('circuit', ({ from, to }) => transitions.inc({ from, to })),
  ];

  let done = false;
  return () => {
    if (done) return;
    done = true;
    for (const off of unsubscribe) off();
    // By the name given at registration: an OpenMetrics scrape renames counters in place.
    for (const name of registered) registry.removeSingleMetric(name);
  };
}

function gauge(name: string, help: string, read: () => number | undefined): Gauge {
  return new Gauge({
    name,
    help,
    registers: [],
    collect() {
      const value = read();
      if (value === undefined) this.remove();
      else this.set(value);
    },
  });
}

function latencyGauge(
  name: string,
  help: string,
  stats: () => CacheStats,
  summary: (s: NamespaceStats) => LatencySummary,
): Gauge<'namespace' | 'quantile'> {
  return new Gauge({
    name,
    help,
    labelNames: ['namespace', 'quantile'],
    registers: [],
    collect() {
      this.reset();
      for (const [namespace, s] of Object.entries(stats().namespaces)) {
        const { count, p50, p99 } = summary(s);
        // No sample before the first measurement: a 0 would read as "instant".
        if (count === 0) continue;
        this.set({ namespace, quantile: '0.5' }, p50 / 1e6);
        this.set({ namespace, quantile: '0.99' }, p99 / 1e6);
      }
    },
  });
}

function nameOf(metric: Metric<string>): string {
  return (metric as unknown as { name: string }).name;
}
