import { afterEach, describe, expect, it } from 'vitest';
import { useRedisSuite } from '../support/suite.js';
import {
  appFromEnv,
  closeApps,
  getByAssistant,
  getBySlug,
  mappingKey,
  postMapping,
  waitForHealth,
} from './helpers.js';

const suite = useRedisSuite();
// Registered after the suite's hooks, so it runs before them: apps close before the server is
// restarted and flushed.
afterEach(closeApps);

describe('Redis killed mid-test', () => {
  it('keeps answering from memory, never 500, and reports degraded until Redis is back', async () => {
    const app = appFromEnv({ REDIS_URL: suite.server.url });
    await waitForHealth(app, 'ok');
    expect((await postMapping(app, { companyName: 'Acme', assistantId: 'asst_1' })).statusCode).toBe(201);

    await suite.server.kill();

    // Reads: what this instance wrote is served from memory; the rest is a 404, not a 500.
    const statuses: number[] = [];
    for (let round = 0; round < 8; round++) {
      // Enough calls to trip the circuit breaker (5 consecutive failures) and go on past it.
      const bySlug = await getBySlug(app, 'acme');
      expect(bySlug.statusCode).toBe(200);
      expect(bySlug.json()).toMatchObject({ assistantId: 'asst_1' });
      const byAssistant = await getByAssistant(app, 'asst_1');
      expect(byAssistant.statusCode).toBe(200);
      expect(byAssistant.json().companySlug).toBe('acme');
      statuses.push((await getBySlug(app, `unknown-${round}`)).statusCode);
      statuses.push((await getByAssistant(app, `asst_unknown_${round}`)).statusCode);
    }
    expect(new Set(statuses)).toEqual(new Set([404]));

    // Writes still succeed, kept in memory, and are readable in both directions.
    const created = await postMapping(app, { companyName: 'Globex', assistantId: 'asst_2', plan: 'pro' });
    expect(created.statusCode).toBe(201);
    expect(created.json().companySlug).toBe('globex');
    expect((await getBySlug(app, 'globex')).json()).toMatchObject({ assistantId: 'asst_2', plan: 'pro' });
    expect((await getByAssistant(app, 'asst_2')).json().companySlug).toBe('globex');
    // Slug collision detection still works against what memory holds.
    const collision = await postMapping(app, { companyName: 'Acme', assistantId: 'asst_3' });
    expect(collision.statusCode).toBe(201);
    expect(collision.json().companySlug).toBe('acme-2');

    const health = await app.inject({ method: 'GET', url: '/api/health' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toMatchObject({
      status: 'degraded',
      reason: expect.stringMatching(/Redis (unreachable|circuit)/),
      checks: { redis: { mode: 'configured', enabled: true } },
    });
    const redisHealth = await app.inject({ method: 'GET', url: '/api/health/redis' });
    expect(redisHealth.statusCode).toBe(503);
    expect(redisHealth.json()).toMatchObject({ enabled: true, reachable: false });

    const stats = (await app.inject({ method: 'GET', url: '/api/cache/stats' })).json();
    expect(stats.totals.fallbacks).toBeGreaterThan(0);

    // Back up (empty: nothing was persisted). The service recovers on its own and writes reach Redis.
    await suite.server.restart();
    await waitForHealth(app, 'ok', 10_000);
    expect((await postMapping(app, { companyName: 'Initech', assistantId: 'asst_4' })).statusCode).toBe(201);
    expect(await suite.server.command('EXISTS', mappingKey('slug:initech'))).toBe(':1\r\n');
    expect(await suite.server.command('EXISTS', mappingKey('assistant:asst_4'))).toBe(':1\r\n');
  });

  it('starts and serves while Redis is down from the beginning', async () => {
    await suite.server.kill();
    const app = appFromEnv({ REDIS_URL: suite.server.url });
    expect((await postMapping(app, { companyName: 'Acme', assistantId: 'asst_1' })).statusCode).toBe(201);
    expect((await getBySlug(app, 'acme')).statusCode).toBe(200);
    expect((await getBySlug(app, 'nobody')).statusCode).toBe(404);
    const health = await app.inject({ method: 'GET', url: '/api/health' });
    expect(health.statusCode).toBe(200);
    expect(health.json().status).toBe('degraded');
  });
});
