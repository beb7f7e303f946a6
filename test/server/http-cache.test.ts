import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { type Cache, createCache } from '../../src/index.js';
import { errorHandler } from '../../src/server/error-handler.js';
import { ServiceError, ServiceErrorCode } from '../../src/server/errors.js';
import { HttpCache } from '../../src/server/http-cache/http-cache.js';
import { waitForRedis } from '../support/cache.js';
import { useRedisSuite } from '../support/suite.js';

const suite = useRedisSuite();

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

/** A gate a handler waits on, to hold a request inside it. */
function gate() {
  let open: () => void = () => {};
  let promise = Promise.resolve();
  const state = { waiting: 0 };
  return {
    state,
    close: () => (promise = new Promise<void>((resolve) => (open = resolve))),
    open: () => open(),
    async pass() {
      state.waiting++;
      await promise;
      state.waiting--;
    },
  };
}

/**
 * An app with cached routes: `/items` (JSON, counts handler runs), `/status/:code`, `/cookie`,
 * `/fail`, `/text`, `/binary`; the tenant comes from the `x-tenant` header, tagged `items`.
 */
function appWith(cache: Cache) {
  const httpCache = new HttpCache({ cache });
  const runs = { items: 0, status: 0, cookie: 0, fail: 0, binary: 0 };
  const held = gate();
  const app = Fastify();
  apps.push(app);
  app.setErrorHandler(errorHandler);
  const cached = httpCache.route({
    ttl: '1m',
    vary: (request) => {
      const tenant = request.headers['x-tenant'];
      if (tenant === 'forbidden') throw new ServiceError(ServiceErrorCode.NotFound, 'No such tenant');
      return { tenant: typeof tenant === 'string' ? tenant : undefined, tags: ['items'] };
    },
  });
  app.get('/items', cached, async (request) => {
    runs.items++;
    await held.pass();
    return { run: runs.items, query: request.query, tenant: request.headers['x-tenant'] ?? null };
  });
  app.get<{ Params: { code: string } }>('/status/:code', cached, async (request, reply) => {
    runs.status++;
    reply.code(Number(request.params.code));
    return { run: runs.status };
  });
  app.get('/cookie', cached, async (_request, reply) => {
    runs.cookie++;
    reply.header('set-cookie', 'sid=abc; HttpOnly');
    return { run: runs.cookie };
  });
  app.get('/fail', cached, async () => {
    runs.fail++;
    throw new ServiceError(ServiceErrorCode.NotFound, `nothing here (run ${runs.fail})`);
  });
  app.get('/binary', cached, async (_request, reply) => {
    runs.binary++;
    reply.type('application/octet-stream');
    return Buffer.from([0, 1, 2, 255, runs.binary]);
  });
  return { app, httpCache, runs, held };
}

const get = (app: FastifyInstance, url: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'GET', url, headers });

describe('HttpCache', () => {
  it('answers MISS, then HIT with the same body and content type, without running the handler', async () => {
    const { app, runs } = appWith(suite.track(createCache({})));
    const first = await get(app, '/items?a=1');
    expect(first.statusCode).toBe(200);
    expect(first.headers['x-cache']).toBe('MISS');
    const second = await get(app, '/items?a=1');
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.body).toBe(first.body);
    expect(second.headers['content-type']).toBe(first.headers['content-type']);
    expect(runs.items).toBe(1);
    // Another query string is another entry.
    expect((await get(app, '/items?a=2')).headers['x-cache']).toBe('MISS');
    expect(runs.items).toBe(2);
  });

  it('keys by tenant: one URL in two tenants is two entries', async () => {
    const { app, runs } = appWith(suite.track(createCache({})));
    expect((await get(app, '/items', { 'x-tenant': 'acme' })).json().tenant).toBe('acme');
    const other = await get(app, '/items', { 'x-tenant': 'globex' });
    expect(other.headers['x-cache']).toBe('MISS');
    expect(other.json().tenant).toBe('globex');
    expect((await get(app, '/items', { 'x-tenant': 'acme' })).json().tenant).toBe('acme');
    expect(runs.items).toBe(2);
  });

  it('never caches errors, non-200 responses or responses that set a cookie', async () => {
    const { app, runs } = appWith(suite.track(createCache({})));
    for (let i = 1; i <= 2; i++) {
      const failed = await get(app, '/fail');
      expect(failed.statusCode).toBe(404);
      expect(failed.json().error.message).toBe(`nothing here (run ${i})`);
      expect(failed.headers['x-cache']).toBe('MISS');
      expect((await get(app, '/status/201')).json().run).toBe(i);
      const cookie = await get(app, '/cookie');
      expect(cookie.json().run).toBe(i);
      expect(cookie.headers['set-cookie']).toBeDefined();
    }
    expect(runs).toMatchObject({ fail: 2, status: 2, cookie: 2 });
    // An error from `vary` reaches the error handler; nothing is cached.
    expect((await get(app, '/items', { 'x-tenant': 'forbidden' })).statusCode).toBe(404);
    expect(runs.items).toBe(0);
  });

  it('caches a Buffer body byte for byte', async () => {
    const { app, runs } = appWith(suite.track(createCache({})));
    const first = await get(app, '/binary');
    const second = await get(app, '/binary');
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.rawPayload.equals(first.rawPayload)).toBe(true);
    expect(second.headers['content-type']).toBe('application/octet-stream');
    expect(runs.binary).toBe(1);
  });

  it('keys a very long URL by its hash', async () => {
    const { app, runs } = appWith(suite.track(createCache({})));
    const url = `/items?q=${'x'.repeat(3000)}`;
    expect((await get(app, url)).headers['x-cache']).toBe('MISS');
    expect((await get(app, url)).headers['x-cache']).toBe('HIT');
    expect((await get(app, `${url}y`)).headers['x-cache']).toBe('MISS');
    expect(runs.items).toBe(2);
  });

  it('invalidates by tag, per tenant', async () => {
    const { app, httpCache } = appWith(suite.track(createCache({})));
    await get(app, '/items', { 'x-tenant': 'acme' });
    await get(app, '/items', { 'x-tenant': 'globex' });
    await httpCache.invalidate('acme', ['items']);
    expect((await get(app, '/items', { 'x-tenant': 'acme' })).headers['x-cache']).toBe('MISS');
    expect((await get(app, '/items', { 'x-tenant': 'globex' })).headers['x-cache']).toBe('HIT');
    await httpCache.invalidate('globex', ['other']);
    expect((await get(app, '/items', { 'x-tenant': 'globex' })).headers['x-cache']).toBe('HIT');
  });

  it('does not cache a response built while its tag was invalidated', async () => {
    const { app, httpCache, runs, held } = appWith(suite.track(createCache({})));
    held.close();
    const inFlight = get(app, '/items');
    await expect.poll(() => held.state.waiting).toBe(1);
    await httpCache.invalidate(undefined, ['items']);
    held.open();
    expect((await inFlight).statusCode).toBe(200);
    const next = await get(app, '/items');
    expect(next.headers['x-cache']).toBe('MISS');
    expect(next.json().run).toBe(2);
    expect(runs.items).toBe(2);
  });

  it('runs the handler once for concurrent requests of one URL', async () => {
    const { app, runs, held } = appWith(suite.track(createCache({})));
    held.close();
    const requests = Array.from({ length: 5 }, () => get(app, '/items?same=1'));
    await expect.poll(() => held.state.waiting).toBe(1);
    held.open();
    const answered = await Promise.all(requests);
    expect(runs.items).toBe(1);
    expect(answered.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200]);
    expect(answered.map((r) => r.headers['x-cache']).sort()).toEqual(['HIT', 'HIT', 'HIT', 'HIT', 'MISS']);
    expect(new Set(answered.map((r) => r.body)).size).toBe(1);
  });

  it('lets waiting requests run their own handler when the first response is not cacheable', async () => {
    const { app, runs } = appWith(suite.track(createCache({})));
    const answered = await Promise.all([get(app, '/status/202'), get(app, '/status/202')]);
    expect(answered.map((r) => r.statusCode)).toEqual([202, 202]);
    expect(runs.status).toBe(2);
  });

  it('shares entries between instances through Redis', async () => {
    const a = appWith(await suite.ready());
    const b = appWith(await suite.ready());
    expect((await get(a.app, '/items?shared=1')).headers['x-cache']).toBe('MISS');
    const fromB = await get(b.app, '/items?shared=1');
    expect(fromB.headers['x-cache']).toBe('HIT');
    expect(b.runs.items).toBe(0);
    await a.httpCache.invalidate(undefined, ['items']);
    await expect.poll(async () => (await get(b.app, '/items?shared=1')).headers['x-cache']).toBe('MISS');
  });

  it('answers while Redis is killed mid-request, and afterwards', async () => {
    const cache = suite.track(createCache({ redis: { url: suite.server.url } }));
    await waitForRedis(cache);
    const { app, held } = appWith(cache);
    expect((await get(app, '/items?warm=1')).headers['x-cache']).toBe('MISS');
    held.close();
    const inFlight = [get(app, '/items?cold=1'), get(app, '/items?cold=2')];
    await expect.poll(() => held.state.waiting).toBe(2);
    await suite.server.kill();
    held.open();
    expect((await Promise.all(inFlight)).map((r) => r.statusCode)).toEqual([200, 200]);
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      statuses.push((await get(app, `/items?round=${i % 4}`)).statusCode);
      statuses.push((await get(app, '/items?warm=1')).statusCode);
    }
    expect(statuses.every((s) => s === 200)).toBe(true);
    // Served from memory while Redis is gone.
    expect((await get(app, '/items?round=1')).headers['x-cache']).toBe('HIT');
  });
});
