import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../support/redis-server.js';
import { useRedisSuite } from '../support/suite.js';
import { appFromEnv, closeApps, postMapping, waitForHealth } from './helpers.js';

const suite = useRedisSuite();
// Registered after the suite's hooks, so it runs before them: apps close before the server is flushed.
afterEach(closeApps);

describe('GET /api/health', () => {
  it('is ok with Redis up, and reports both tiers', async () => {
    const app = appFromEnv({ REDIS_URL: suite.server.url });
    await waitForHealth(app, 'ok');
    const res = await app.inject({ method: 'GET', url: '/api/health' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.status).toBe('ok');
    expect(body.reason).toBeUndefined();
    expect(body.checks.memory).toMatchObject({ enabled: true });
    expect(body.checks.redis).toMatchObject({
      mode: 'configured',
      enabled: true,
      ready: true,
      circuit: 'closed',
      driver: 'node-redis',
      endpoint: expect.stringContaining(`127.0.0.1:${suite.server.port}`),
    });
    expect(body.checks.redis.pingMs).toBeGreaterThanOrEqual(0);
  });

  it('is degraded (still 200) when Redis is not configured, and says so', async () => {
    const app = appFromEnv({});
    const res = await app.inject({ method: 'GET', url: '/api/health' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.status).toBe('degraded');
    expect(body.reason).toMatch(/not configured/i);
    expect(body.reason).not.toMatch(/REDIS_ENABLED/);
    expect(body.checks.redis).toMatchObject({ mode: 'not-configured', enabled: false, circuit: 'disabled' });
  });

  it('is degraded when REDIS_ENABLED=false, names the switch, and never connects', async () => {
    const clients = async () =>
      Number(/connected_clients:(\d+)/.exec(await suite.server.command('INFO', 'clients'))?.[1]);
    const before = await clients();
    const app = appFromEnv({ REDIS_URL: suite.server.url, REDIS_ENABLED: 'false' });
    const res = await app.inject({ method: 'GET', url: '/api/health' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.status).toBe('degraded');
    expect(body.reason).toContain('REDIS_ENABLED=false');
    expect(body.checks.redis).toMatchObject({ mode: 'disabled', enabled: false });
    // The service still works, from memory.
    expect((await postMapping(app, { companyName: 'Acme', assistantId: 'asst_1' })).statusCode).toBe(201);
    expect(await clients()).toBe(before);
    expect(await suite.server.command('DBSIZE')).toBe(':0\r\n');
  });
});

describe('GET /api/health/redis', () => {
  it('reports ping latency, circuit and endpoint when Redis is up', async () => {
    const app = appFromEnv({ REDIS_URL: suite.server.url });
    await waitForHealth(app, 'ok');
    const res = await app.inject({ method: 'GET', url: '/api/health/redis' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      enabled: true,
      reachable: true,
      circuit: 'closed',
      ready: true,
      endpoint: expect.stringContaining(`127.0.0.1:${suite.server.port}`),
      pingMs: expect.any(Number),
    });
  });

  it('answers 503 with a redacted endpoint when Redis is configured but unreachable', async () => {
    const port = await freePort();
    const app = appFromEnv({ REDIS_URL: `redis://user:s3cret@127.0.0.1:${port}` });
    const res = await app.inject({ method: 'GET', url: '/api/health/redis' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({
      enabled: true,
      reachable: false,
      endpoint: `redis://user:***@127.0.0.1:${port}`,
      error: expect.any(String),
    });
    expect(res.body).not.toContain('s3cret');
    const health = await app.inject({ method: 'GET', url: '/api/health' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toMatchObject({
      status: 'degraded',
      reason: expect.stringMatching(/unreachable/i),
    });
    expect(health.body).not.toContain('s3cret');
  });

  it.each([
    [{}, 'not-configured', /not configured/i],
    [{ REDIS_URL: 'redis://127.0.0.1:1', REDIS_ENABLED: 'no' }, 'disabled', /REDIS_ENABLED=no/],
  ] as Array<[NodeJS.ProcessEnv, string, RegExp]>)(
    'answers 200 enabled:false when memory-only (%o)',
    async (env, mode, reason) => {
      const app = appFromEnv(env);
      const res = await app.inject({ method: 'GET', url: '/api/health/redis' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ enabled: false, mode, reason: expect.stringMatching(reason) });
    },
  );
});

describe('GET /api/cache/stats', () => {
  it("returns the cache's counters, tiers and circuit", async () => {
    const app = appFromEnv({ REDIS_URL: suite.server.url });
    await waitForHealth(app, 'ok');
    await postMapping(app, { companyName: 'Acme', assistantId: 'asst_1' });
    await app.inject({ method: 'GET', url: '/api/company-assistant?slug=acme' });
    const res = await app.inject({ method: 'GET', url: '/api/cache/stats' });
    expect(res.statusCode).toBe(200);
    const stats = res.json();
    expect(stats.redis).toMatchObject({ enabled: true, ready: true, circuit: 'closed' });
    expect(stats.memory.enabled).toBe(true);
    expect(stats.memory.entries).toBeGreaterThanOrEqual(2);
    expect(stats.totals.sets).toBe(2);
    expect(stats.namespaces['company-assistants']).toMatchObject({ sets: 2, hits: { memory: 1 } });
  });

  it('works memory-only', async () => {
    const app = appFromEnv({});
    const res = await app.inject({ method: 'GET', url: '/api/cache/stats' });
    expect(res.statusCode).toBe(200);
    expect(res.json().redis).toMatchObject({ enabled: false, circuit: 'disabled' });
  });
});
