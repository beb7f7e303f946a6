import { type OpenMetricsContentType, Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Cache, type CacheStats, createCache, ErrorCode, isLarderError } from '../../src/index.js';
import { registerPrometheusMetrics } from '../../src/telemetry/prometheus.js';
import { waitForRedis } from '../support/cache.js';
import { useRedisSuite } from '../support/suite.js';
import { Exposition } from './exposition.js';

const suite = useRedisSuite();

async function scrape(registry: Registry): Promise<Exposition> {
  return new Exposition(await registry.metrics());
}

/** Counters of `larder_*_total{namespace}` and the stats field each must equal. */
const COUNTERS: ReadonlyArray<readonly [string, (s: CacheStats['namespaces'][string]) => number]> = [
  ['larder_misses_total', (s) => s.misses],
  ['larder_sets_total', (s) => s.sets],
  ['larder_deletes_total', (s) => s.deletes],
  ['larder_loader_calls_total', (s) => s.loader.calls],
  ['larder_loader_errors_total', (s) => s.loader.errors],
  ['larder_fallbacks_total', (s) => s.fallbacks],
  ['larder_redis_errors_total', (s) => s.redisErrors],
  ['larder_redis_timeouts_total', (s) => s.timeouts],
  ['larder_decode_errors_total', (s) => s.decodeErrors],
  ['larder_stale_served_total', (s) => s.staleServed],
  ['larder_refreshes_total', (s) => s.refreshes],
  ['larder_lock_waits_total', (s) => s.lockWaits],
  ['larder_redis_round_trips_total', (s) => s.redisLatencyMicros.count],
];

/** Asserts that every series of the scrape agrees with `stats`, and that each stat has its series. */
function expectScrapeToMatch(metrics: Exposition, stats: CacheStats): void {
  const namespaces = Object.keys(stats.namespaces).sort();
  expect(metrics.labelValues('namespace', 'larder_hits_total')).toEqual(namespaces);
  for (const [namespace, s] of Object.entries(stats.namespaces)) {
    expect(metrics.value('larder_hits_total', { namespace, tier: 'memory' })).toBe(s.hits.memory);
    expect(metrics.value('larder_hits_total', { namespace, tier: 'redis' })).toBe(s.hits.redis);
    for (const [name, read] of COUNTERS) {
      expect({ name, namespace, value: metrics.value(name, { namespace }) }).toEqual({
        name,
        namespace,
        value: read(s),
      });
    }
    for (const [name, latency] of [
      ['larder_redis_latency_seconds', s.redisLatencyMicros],
      ['larder_loader_latency_seconds', s.loader.latencyMicros],
    ] as const) {
      if (latency.count === 0) {
        expect(metrics.has(name, { namespace, quantile: '0.5' })).toBe(false);
        continue;
      }
      expect(metrics.value(name, { namespace, quantile: '0.5' })).toBe(latency.p50 / 1e6);
      expect(metrics.value(name, { namespace, quantile: '0.99' })).toBe(latency.p99 / 1e6);
    }
  }
  expect(metrics.value('larder_memory_entries')).toBe(stats.memory.entries);
  expect(metrics.value('larder_memory_bytes')).toBe(stats.memory.bytes);
  expect(metrics.value('larder_redis_pending_commands')).toBe(stats.redis.pendingCommands);
  expect(metrics.value('larder_redis_pending_writes')).toBe(stats.redis.pendingWrites);
  expect(metrics.value('larder_redis_ready')).toBe(stats.redis.ready ? 1 : 0);
  if (stats.redis.bus === 'off') expect(metrics.has('larder_bus_up')).toBe(false);
  else expect(metrics.value('larder_bus_up')).toBe(stats.redis.bus === 'up' ? 1 : 0);
  const circuit = { closed: 0, 'half-open': 1, open: 2 } as const;
  if (stats.redis.circuit === 'disabled') expect(metrics.has('larder_redis_circuit_state')).toBe(false);
  else expect(metrics.value('larder_redis_circuit_state')).toBe(circuit[stats.redis.circuit]);
}

const unregisters: Array<() => void> = [];
afterEach(() => {
  for (const unregister of unregisters.splice(0)) unregister();
});

/** A fresh registry with the cache's collectors, unregistered after the test. */
function registered(cache: Cache): Registry {
  const registry = new Registry();
  unregisters.push(registerPrometheusMetrics(cache, { registry }));
  return registry;
}

describe('Prometheus metrics', () => {
  it('exposes the counters, gauges and latency percentiles of cache.stats()', async () => {
    const writer = await suite.ready();
    const cache = await suite.ready();
    const registry = registered(cache);
    await writer.set('shared', 1);
    await writer.namespace('kpi').set('revenue', 10);
    await suite.server.command('SET', 'test:1:d:broken', '{not json');

    expect(await cache.get('shared')).toBe(1); // redis hit
    expect(await cache.get('shared')).toBe(1); // memory hit
    expect(await cache.get('missing')).toBeUndefined();
    expect(await cache.get('broken')).toBeUndefined();
    const kpi = cache.namespace('kpi');
    expect(await kpi.get('revenue')).toBe(10);
    expect(await kpi.getOrSet('margin', () => 3)).toBe(3);
    await expect(kpi.getOrSet('boom', () => Promise.reject(new Error('db down')))).rejects.toThrow();
    await kpi.set('a', 1);
    await kpi.delete('a', 'revenue');

    const metrics = await scrape(registry);
    const stats = cache.stats();
    expectScrapeToMatch(metrics, stats);
    // The scenario above did reach every kind of counter it claims to.
    expect(metrics.value('larder_hits_total', { namespace: '(root)', tier: 'redis' })).toBe(1);
    expect(metrics.value('larder_hits_total', { namespace: '(root)', tier: 'memory' })).toBe(1);
    expect(metrics.value('larder_decode_errors_total', { namespace: '(root)' })).toBe(1);
    expect(metrics.value('larder_loader_errors_total', { namespace: 'kpi' })).toBe(1);
    expect(metrics.value('larder_deletes_total', { namespace: 'kpi' })).toBe(2);
    expect(metrics.value('larder_redis_ready')).toBe(1);
    expect(
      metrics.value('larder_redis_latency_seconds', { namespace: 'kpi', quantile: '0.99' }),
    ).toBeGreaterThan(0);
    expect(metrics.types.get('larder_hits_total')).toBe('counter');
    expect(metrics.types.get('larder_redis_latency_seconds')).toBe('gauge');
  });

  it('reads cache.stats() once per scrape, not once per metric', async () => {
    const cache = await suite.ready();
    const registry = registered(cache);
    await cache.set('k', 1);
    const stats = vi.spyOn(cache, 'stats');
    await registry.metrics();
    expect(stats).toHaveBeenCalledTimes(1);
    await registry.metrics();
    expect(stats).toHaveBeenCalledTimes(2);
  });

  it('counts errors, timeouts, overload, fallbacks by reason and circuit transitions', async () => {
    const cache = await suite.ready({
      redis: {
        url: suite.server.url,
        commandTimeout: 200,
        maxPendingCommands: 2,
        circuitBreaker: { failureThreshold: 3, openDuration: 300 },
      },
    });
    const registry = registered(cache);
    const before = await scrape(registry);
    expect(before.value('larder_circuit_transitions_total', { from: 'closed', to: 'open' })).toBe(0);
    const byReason = (metrics: Exposition, reason: string) =>
      metrics.has('larder_fallbacks_by_reason_total', { namespace: '(root)', reason })
        ? metrics.value('larder_fallbacks_by_reason_total', { namespace: '(root)', reason })
        : 0;

    // Redis gone: calls fail fast until the circuit opens, then the circuit refuses them.
    await suite.server.kill();
    for (let i = 0; i < 5; i++) expect(await cache.getOrSet(`gone${i}`, () => i)).toBe(i);
    const down = await scrape(registry);
    expectScrapeToMatch(down, cache.stats());
    expect(down.value('larder_redis_ready')).toBe(0);
    expect(down.value('larder_bus_up')).toBe(0);
    expect(down.value('larder_redis_pending_writes')).toBeGreaterThan(0); // kept for replay
    expect(down.value('larder_redis_circuit_state')).toBe(2);
    expect(down.value('larder_redis_errors_total', { namespace: '(root)' })).toBeGreaterThan(0);
    expect(byReason(down, 'error')).toBeGreaterThan(0);
    expect(byReason(down, 'circuit-open')).toBeGreaterThan(0);
    expect(down.value('larder_circuit_transitions_total', { from: 'closed', to: 'open' })).toBe(1);

    await suite.server.restart();
    await waitForRedis(cache, 3000); // its ping is the probe that closes the circuit
    const back = await scrape(registry);
    expectScrapeToMatch(back, cache.stats());
    expect(back.value('larder_redis_circuit_state')).toBe(0);
    expect(back.value('larder_redis_ready')).toBe(1);
    expect(back.value('larder_circuit_transitions_total', { from: 'open', to: 'half-open' })).toBeGreaterThan(
      0,
    );
    expect(back.value('larder_circuit_transitions_total', { from: 'half-open', to: 'closed' })).toBe(1);

    // Redis stalled: two calls hold both pending slots and time out; the rest are refused.
    suite.server.pause();
    const values = await Promise.all([1, 2, 3, 4].map((i) => cache.getOrSet(`stalled${i}`, () => i)));
    expect(values).toEqual([1, 2, 3, 4]);
    const stalled = await scrape(registry);
    expectScrapeToMatch(stalled, cache.stats());
    expect(stalled.value('larder_redis_pending_commands')).toBe(2);
    expect(stalled.value('larder_redis_timeouts_total', { namespace: '(root)' })).toBe(2);
    expect(byReason(stalled, 'timeout')).toBe(2);
    expect(byReason(stalled, 'overloaded')).toBeGreaterThan(0);
    const reasons = ['error', 'timeout', 'overloaded', 'circuit-open', 'disabled'];
    expect(reasons.reduce((sum, reason) => sum + byReason(stalled, reason), 0)).toBe(
      stalled.value('larder_fallbacks_total', { namespace: '(root)' }),
    );
    expect(stalled.value('larder_circuit_transitions_total', { from: 'closed', to: 'open' })).toBe(2);
    suite.server.resume();
  });

  it('1,000 tenants of one namespace add no series', async () => {
    const cache = await suite.ready();
    const registry = registered(cache);
    const kpi = cache.namespace('kpi');
    const work = async (tenant: string) => {
      const view = kpi.forTenant(tenant);
      await view.set('revenue', 1);
      await view.get('revenue');
      await view.getOrSet('margin', () => 2);
      await view.delete('revenue');
    };
    await work('tenant-0');
    const one = await scrape(registry);
    for (let i = 1; i < 1000; i++) await work(`tenant-${i}`);
    const thousand = await scrape(registry);

    expect(thousand.seriesKeys('larder_')).toEqual(one.seriesKeys('larder_'));
    // `(root)` is the cache's own view; no tenant ever becomes a label.
    expect(thousand.labelValues('namespace', 'larder_')).toEqual(['(root)', 'kpi']);
    expect(thousand.value('larder_hits_total', { namespace: 'kpi', tier: 'memory' })).toBe(1000);
    expect(thousand.value('larder_loader_calls_total', { namespace: 'kpi' })).toBe(1000);
    expectScrapeToMatch(thousand, cache.stats());
  });

  it('a memory-only cache has no circuit sample and reports Redis not ready', async () => {
    const cache = suite.track(createCache({ redis: false }));
    const registry = registered(cache);
    await cache.set('k', 1);
    await cache.get('k');
    const metrics = await scrape(registry);
    expectScrapeToMatch(metrics, cache.stats());
    expect(metrics.value('larder_redis_ready')).toBe(0);
    expect(metrics.value('larder_memory_entries')).toBe(1);
  });

  it('unregisters every metric and listener; a second registration under one name leaves the first intact', async () => {
    const cache = await suite.ready();
    const registry = new Registry();
    const unregister = registerPrometheusMetrics(cache, { registry });
    const names = registry.getMetricsAsArray().map((m) => m.name);
    expect(names.length).toBeGreaterThan(15);

    expect(() => registerPrometheusMetrics(cache, { registry })).toThrow(/already been registered/);
    expect(registry.getMetricsAsArray().map((m) => m.name)).toEqual(names);
    const other = registerPrometheusMetrics(cache, { registry, prefix: 'orders_cache_' });
    expect((await scrape(registry)).has('orders_cache_memory_entries')).toBe(true);

    unregister();
    unregister(); // idempotent
    other();
    expect(registry.getMetricsAsArray()).toEqual([]);
    expect(await registry.metrics()).toBe('\n');
  });

  it('unregisters after an OpenMetrics scrape, which renames counters in place', async () => {
    const cache = await suite.ready();
    const registry = new Registry<OpenMetricsContentType>();
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const unregister = registerPrometheusMetrics(cache, { registry });
    await cache.set('k', 1);
    const text = await registry.metrics();
    expect(text).toContain('larder_sets_total{namespace="(root)"} 1');
    unregister();
    expect(registry.getMetricsAsArray()).toEqual([]);
  });

  it('rejects a prefix Prometheus cannot use, naming the option', () => {
    const cache = suite.track(createCache({ redis: false }));
    const error = (() => {
      try {
        registerPrometheusMetrics(cache, { registry: new Registry(), prefix: 'my-cache.' });
      } catch (e) {
        return e;
      }
    })();
    expect(isLarderError(error, ErrorCode.InvalidOptions)).toBe(true);
    expect((error as Error).message).toBe(
      'Expected `prefix` to match /^[a-zA-Z_:][a-zA-Z0-9_:]*$/, got "my-cache." (string)',
    );
  });
});
