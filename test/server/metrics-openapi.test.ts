import { register as globalRegistry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tagOf } from '../../src/server/openapi.js';
import { useRedisSuite } from '../support/suite.js';
import { Exposition } from '../telemetry/exposition.js';
import { appFromEnv, closeApps, waitForHealth } from './helpers.js';

const suite = useRedisSuite();
// Registered after the suite's hooks, so it runs before them: apps close before the server is flushed.
afterEach(closeApps);
// A first start also connects the job queues; on a busy 2-core machine that can take seconds.
const HEALTHY_WITHIN_MS = 20_000;
vi.setConfig({ testTimeout: 60_000 });

describe('GET /metrics', () => {
  it('exposes the cache series, equal to /api/cache/stats, and process metrics, as text 0.0.4', async () => {
    const app = appFromEnv({ REDIS_URL: suite.server.url });
    await waitForHealth(app, 'ok', HEALTHY_WITHIN_MS);
    const kpi = app.cache.namespace('kpi');
    for (let i = 0; i < 5; i++) await kpi.getOrSet(`k${i % 3}`, async () => i);
    await kpi.get('absent');

    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const metrics = new Exposition(res.body);
    const stats = (await app.inject({ method: 'GET', url: '/api/cache/stats' })).json();
    const ns = stats.namespaces.kpi;
    expect(metrics.value('larder_hits_total', { namespace: 'kpi', tier: 'memory' })).toBe(ns.hits.memory);
    expect(metrics.value('larder_hits_total', { namespace: 'kpi', tier: 'redis' })).toBe(ns.hits.redis);
    expect(metrics.value('larder_misses_total', { namespace: 'kpi' })).toBe(ns.misses);
    expect(metrics.value('larder_loader_calls_total', { namespace: 'kpi' })).toBe(3);
    expect(metrics.value('larder_redis_circuit_state')).toBe(0);
    expect(metrics.value('larder_memory_entries')).toBe(stats.memory.entries);
    // prom-client's default process metrics, in the same scrape.
    expect(metrics.has('process_cpu_user_seconds_total')).toBe(true);
    expect(metrics.has('nodejs_eventloop_lag_seconds')).toBe(true);
    expect(metrics.types.get('larder_hits_total')).toBe('counter');
    // Nothing leaks into prom-client's global registry (an embedding application keeps its own).
    expect(await globalRegistry.metrics()).not.toContain('larder_');
  });

  it('serves several apps in one process, and answers with Redis dead (circuit open)', async () => {
    const a = appFromEnv({ REDIS_URL: suite.server.url });
    const b = appFromEnv({});
    await waitForHealth(a, 'ok', HEALTHY_WITHIN_MS);
    await suite.server.kill();
    const scope = a.cache.namespace('kpi');
    for (let i = 0; i < 10; i++) await scope.getOrSet(`k${i}`, async () => i);
    const dead = await a.inject({ method: 'GET', url: '/metrics' });
    expect(dead.statusCode).toBe(200);
    const metrics = new Exposition(dead.body);
    expect(metrics.value('larder_fallbacks_total', { namespace: 'kpi' })).toBeGreaterThan(0);
    expect(metrics.value('larder_redis_circuit_state')).toBe(2);
    const memoryOnly = await b.inject({ method: 'GET', url: '/metrics' });
    expect(memoryOnly.statusCode).toBe(200);
    expect(new Exposition(memoryOnly.body).has('larder_redis_circuit_state')).toBe(false);
  });
});

describe('OpenAPI', () => {
  it('serves a spec at /docs/json listing the main routes, and the UI at /docs', async () => {
    const app = appFromEnv({});
    const res = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const spec = res.json();
    expect(spec.openapi).toMatch(/^3\./);
    expect(spec.info.title).toBe('Larder reference service');
    const routes = Object.entries(spec.paths as Record<string, Record<string, unknown>>).flatMap(
      ([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(routes).toEqual(
      expect.arrayContaining([
        'GET /api/health',
        'GET /api/health/redis',
        'GET /api/cache/stats',
        'GET /metrics',
        'POST /api/company-assistants',
        'GET /api/company-assistant',
        'GET /api/assistants/{assistantId}/company',
        'GET /api/leads/lookup',
        'PATCH /api/leads/{id}',
        'POST /api/session/login',
        'POST /api/session/logout',
        'GET /api/session',
        'POST /api/admin/invalidate',
        'POST /api/admin/redis',
      ]),
    );
    // The dashboard's files and the docs' own routes are not API.
    expect(routes.some((r) => r.endsWith(' /') || r.includes('/dashboard/') || r.includes('/docs'))).toBe(
      false,
    );
    const invalidate = spec.paths['/api/admin/invalidate'].post;
    expect(invalidate.tags).toEqual(['admin']);
    expect(invalidate.security).toEqual([{ adminToken: [] }]);
    expect(invalidate.requestBody.content['application/json'].schema.required).toEqual(['namespace']);
    expect(spec.paths['/api/leads/lookup'].get.tags).toEqual(['leads']);
    expect(spec.paths['/api/health'].get.tags).toEqual(['operations']);

    const ui = await app.inject({ method: 'GET', url: '/docs' });
    expect(ui.statusCode).toBe(200);
    expect(ui.headers['content-type']).toMatch(/text\/html/);
    expect((await app.inject({ method: 'GET', url: '/docs/yaml' })).statusCode).toBe(200);
  });

  it('tags routes by their first path segment', () => {
    expect(tagOf('/api/health/redis')).toBe('operations');
    expect(tagOf('/metrics')).toBe('operations');
    expect(tagOf('/api/cache/stats')).toBe('operations');
    expect(tagOf('/api/leads/lookup')).toBe('leads');
    expect(tagOf('/api/assistants/:assistantId/company')).toBe('company-assistants');
    expect(tagOf('/api/company-assistant')).toBe('company-assistants');
    expect(tagOf('/api/jobs')).toBe('jobs');
  });
});

describe('GET / (the dashboard)', () => {
  it('serves the page, its script and styles, and uPlot from node_modules', async () => {
    const app = appFromEnv({});
    const page = await app.inject({ method: 'GET', url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.body).toContain('data-testid="hit-rate"');
    for (const [url, type, text] of [
      ['/dashboard/dashboard.js', 'text/javascript', '/api/cache/stats'],
      ['/dashboard/dashboard.css', 'text/css', '.readout'],
      ['/dashboard/vendor/uPlot.iife.min.js', 'text/javascript', 'uPlot'],
      ['/dashboard/vendor/uPlot.min.css', 'text/css', '.uplot'],
    ] as const) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type'], url).toContain(type);
      expect(res.body, url).toContain(text);
    }
    // Only the listed files: no path reaches the file system.
    for (const url of [
      '/dashboard/../package.json',
      '/dashboard/vendor/uPlot.cjs.js',
      '/dashboard/index.html',
    ]) {
      expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(404);
    }
  });
});
