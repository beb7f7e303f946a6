import { createHash } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createCache } from '../../src/index.js';
import { ConfigError, loadConfig } from '../../src/server/config.js';
import { LarderSessionStore, SESSION_TTL_MS } from '../../src/server/sessions/larder-session-store.js';
import { SESSION_COOKIE } from '../../src/server/sessions/sessions.js';
import { integerReply } from '../support/redis-replies.js';
import { useRedisSuite } from '../support/suite.js';
import { ADMIN_TOKEN, adminHeaders, appFromEnv, closeApps, waitForHealth } from './helpers.js';

const suite = useRedisSuite();
// Registered after the suite's hooks, so it runs before them: apps close before the server is flushed.
afterEach(closeApps);
// A first start also connects the job queues; on a busy 2-core machine that can take seconds.
const HEALTHY_WITHIN_MS = 20_000;
vi.setConfig({ testTimeout: 60_000 });

async function redisApp(env: NodeJS.ProcessEnv = {}): Promise<FastifyInstance> {
  const app = appFromEnv({ REDIS_URL: suite.server.url, ...env });
  await waitForHealth(app, 'ok', HEALTHY_WITHIN_MS);
  return app;
}

function login(app: FastifyInstance, token: unknown = ADMIN_TOKEN) {
  return app.inject({ method: 'POST', url: '/api/session/login', payload: { token } });
}

/** The session cookie a response set, or `undefined`. */
function sessionCookie(res: LightMyRequestResponse) {
  return res.cookies.find((c) => c.name === SESSION_COOKIE);
}

async function loggedIn(app: FastifyInstance): Promise<string> {
  const res = await login(app);
  expect(res.statusCode).toBe(200);
  const cookie = sessionCookie(res);
  expect(cookie).toBeDefined();
  return (cookie as { value: string }).value;
}

function whoAmI(app: FastifyInstance, cookie?: string) {
  return app.inject({
    method: 'GET',
    url: '/api/session',
    cookies: cookie === undefined ? {} : { [SESSION_COOKIE]: cookie },
  });
}

/** An admin route called with the session cookie only. */
function adminCall(app: FastifyInstance, cookie: string) {
  return app.inject({
    method: 'POST',
    url: '/api/admin/invalidate',
    cookies: { [SESSION_COOKIE]: cookie },
    payload: { namespace: 'demo' },
  });
}

const SESSION_KEY_PREFIX = 'larder:test:1:d:sessions:';

/** The session entries in Redis. */
async function sessionKeys(): Promise<string[]> {
  const reply = await suite.server.command('SCAN', '0', 'MATCH', `${SESSION_KEY_PREFIX}*`, 'COUNT', '100000');
  return reply.split('\r\n').filter((line) => line.startsWith(SESSION_KEY_PREFIX));
}

/** The Redis key of the session a cookie names (LARDER_ENV=test). */
function redisKeyOf(cookie: string): string {
  const sessionId = cookie.slice(0, cookie.lastIndexOf('.'));
  return `${SESSION_KEY_PREFIX}${createHash('sha256').update(sessionId).digest('base64url')}`;
}

describe('POST /api/session/login', () => {
  it('sets an httpOnly, SameSite=Strict, 24 h cookie naming a session stored in Redis', async () => {
    const app = await redisApp();
    const res = await login(app);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ admin: true });
    expect(Date.parse(res.json().loggedInAt)).toBeGreaterThan(Date.now() - 60_000);
    const cookie = sessionCookie(res);
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(cookie?.secure).toBeFalsy();
    const expires = (cookie?.expires as Date).getTime();
    expect(expires).toBeGreaterThan(Date.now() + SESSION_TTL_MS - 60_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + SESSION_TTL_MS);

    const key = redisKeyOf(cookie?.value as string);
    expect(await sessionKeys()).toEqual([key]);
    const ttl = integerReply(await suite.server.command('PTTL', key));
    expect(ttl).toBeGreaterThan(SESSION_TTL_MS - 60_000);
    expect(ttl).toBeLessThanOrEqual(SESSION_TTL_MS);
    // The stored value holds no session id (the key is its hash) and no token.
    const stored = await suite.server.command('GET', key);
    expect(stored).not.toContain(ADMIN_TOKEN);
    expect(stored).not.toContain((cookie?.value as string).split('.')[0]);
  });

  it('refuses a wrong token with 401 E_UNAUTHORIZED and sets no cookie', async () => {
    const app = await redisApp();
    for (const token of [`${ADMIN_TOKEN}x`, ADMIN_TOKEN.slice(1), 'x', ADMIN_TOKEN.toUpperCase()]) {
      const res = await login(app, token);
      expect(res.statusCode, token).toBe(401);
      expect(res.json().error.code).toBe('E_UNAUTHORIZED');
      expect(res.body).not.toContain(ADMIN_TOKEN);
      expect(sessionCookie(res)).toBeUndefined();
    }
    expect(await sessionKeys()).toEqual([]);
  });

  it('answers bad bodies with a 400 naming the field', async () => {
    const app = await redisApp();
    for (const [payload, field] of [
      [{}, 'token'],
      [{ token: 42 }, 'token'],
      [{ token: '' }, 'token'],
      [{ token: 'x'.repeat(600) }, 'token'],
    ] as const) {
      const res = await app.inject({ method: 'POST', url: '/api/session/login', payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'E_VALIDATION' });
      expect(res.json().error.message).toContain(field);
    }
    const notJson = await app.inject({
      method: 'POST',
      url: '/api/session/login',
      headers: { 'content-type': 'application/json' },
      payload: '{"token":',
    });
    expect(notJson.statusCode).toBe(400);
  });

  it('refuses every login when the app has no admin token', async () => {
    const app = appFromEnv({ LARDER_ADMIN_TOKEN: '' });
    const res = await login(app, 'anything-at-all-1234');
    expect(res.statusCode).toBe(401);
    expect(res.json().error.message).toMatch(/LARDER_ADMIN_TOKEN/);
  });

  it('gives a new session id at login: a cookie planted before does not become an admin one', async () => {
    const app = await redisApp();
    const first = await loggedIn(app);
    const relogin = await app.inject({
      method: 'POST',
      url: '/api/session/login',
      cookies: { [SESSION_COOKIE]: first },
      payload: { token: ADMIN_TOKEN },
    });
    const second = sessionCookie(relogin)?.value as string;
    expect(second.split('.')[0]).not.toBe(first.split('.')[0]);
    expect((await whoAmI(app, second)).json().admin).toBe(true);
    expect((await whoAmI(app, first)).json().admin).toBe(false);
  });
});

describe('sessions on admin routes', () => {
  it('lets an admin session call admin routes; no cookie, a forged or a tampered one is a 401', async () => {
    const app = await redisApp();
    const cookie = await loggedIn(app);
    expect((await adminCall(app, cookie)).statusCode).toBe(200);
    const tampered = `${cookie.slice(0, 5)}${cookie[5] === 'a' ? 'b' : 'a'}${cookie.slice(6)}`;
    for (const bad of [tampered, 'not-a-session', `${cookie.split('.')[0]}.forged`]) {
      const res = await adminCall(app, bad);
      expect(res.statusCode, bad).toBe(401);
      expect(res.json().error.code).toBe('E_UNAUTHORIZED');
    }
    const none = await app.inject({
      method: 'POST',
      url: '/api/admin/invalidate',
      payload: { namespace: 'x' },
    });
    expect(none.statusCode).toBe(401);
  });

  it('is accepted by admin routes registered outside the sessions context (read from the store)', async () => {
    const app = appFromEnv({ REDIS_URL: suite.server.url });
    app.get('/test/elsewhere', { preHandler: app.requireAdmin }, async () => ({ ok: true }));
    await waitForHealth(app, 'ok', HEALTHY_WITHIN_MS);
    const cookie = await loggedIn(app);
    const ok = await app.inject({
      method: 'GET',
      url: '/test/elsewhere',
      cookies: { [SESSION_COOKIE]: cookie },
    });
    expect(ok.statusCode).toBe(200);
    // Outside the context no session machinery runs: no cookie is set or refreshed there.
    expect(sessionCookie(ok)).toBeUndefined();
    const bearer = await app.inject({ method: 'GET', url: '/test/elsewhere', headers: adminHeaders() });
    expect(bearer.statusCode).toBe(200);
    await app.inject({ method: 'POST', url: '/api/session/logout', cookies: { [SESSION_COOKIE]: cookie } });
    const after = await app.inject({
      method: 'GET',
      url: '/test/elsewhere',
      cookies: { [SESSION_COOKIE]: cookie },
    });
    expect(after.statusCode).toBe(401);
  });

  it('creates no session for routes that do not need one, nor for anonymous session checks', async () => {
    const app = await redisApp();
    const calls = [
      await app.inject({ method: 'GET', url: '/api/cache/stats' }),
      await app.inject({ method: 'GET', url: '/api/health' }),
      await whoAmI(app),
      await app.inject({ method: 'POST', url: '/api/admin/redis', payload: { enabled: true } }),
      await app.inject({ method: 'POST', url: '/api/session/logout' }),
    ];
    for (const res of calls) expect(res.headers['set-cookie'], res.raw.req?.url).toBeUndefined();
    expect((await whoAmI(app)).json()).toEqual({ admin: false });
    expect(app.cache.stats().namespaces.sessions?.sets ?? 0).toBe(0);
    expect(await sessionKeys()).toEqual([]);
  });

  it('extends the session on activity: each use restarts its TTL and the cookie', async () => {
    const app = await redisApp();
    const cookie = await loggedIn(app);
    const key = redisKeyOf(cookie);
    // Age the entry, as if the session had been idle for an hour.
    await suite.server.command('PEXPIRE', key, String(SESSION_TTL_MS - 3_600_000));
    const aged = integerReply(await suite.server.command('PTTL', key));
    const res = await whoAmI(app, cookie);
    expect(res.json().admin).toBe(true);
    const refreshed = sessionCookie(res);
    expect(refreshed?.value).toBe(cookie);
    expect((refreshed?.expires as Date).getTime()).toBeGreaterThan(Date.now() + SESSION_TTL_MS - 60_000);
    expect(Date.parse(res.json().expiresAt)).toBeGreaterThan(Date.now() + SESSION_TTL_MS - 60_000);
    await expect
      .poll(async () => integerReply(await suite.server.command('PTTL', key)))
      .toBeGreaterThan(aged + 3_000_000);
  });
});

describe('POST /api/session/logout', () => {
  it('revokes the session in the store: the old cookie stops working, also on a second instance', async () => {
    const a = await redisApp();
    const b = await redisApp();
    const cookie = await loggedIn(a);
    expect((await whoAmI(b, cookie)).json().admin).toBe(true);
    expect((await adminCall(b, cookie)).statusCode).toBe(200);

    const out = await a.inject({
      method: 'POST',
      url: '/api/session/logout',
      cookies: { [SESSION_COOKIE]: cookie },
    });
    expect(out.statusCode).toBe(200);
    expect(out.json()).toEqual({ loggedOut: true });
    const cleared = sessionCookie(out);
    expect(cleared?.value).toBe('');
    expect(integerReply(await suite.server.command('EXISTS', redisKeyOf(cookie)))).toBe(0);

    expect((await whoAmI(a, cookie)).json().admin).toBe(false);
    expect((await adminCall(a, cookie)).statusCode).toBe(401);
    // b had the session in its memory tier: the delete reaches it over Larder's bus.
    await expect.poll(async () => (await adminCall(b, cookie)).statusCode).toBe(401);
    expect((await whoAmI(b, cookie)).json().admin).toBe(false);
  });

  it('refuses cookies signed with another SESSION_SECRET', async () => {
    const a = await redisApp({ SESSION_SECRET: 'a'.repeat(40) });
    const b = await redisApp({ SESSION_SECRET: 'b'.repeat(40) });
    const cookie = await loggedIn(a);
    expect((await whoAmI(a, cookie)).json().admin).toBe(true);
    expect((await whoAmI(b, cookie)).json().admin).toBe(false);
    expect((await adminCall(b, cookie)).statusCode).toBe(401);
  });
});

describe('sessions while Redis fails', () => {
  it('keeps answering when Redis stalls and dies under requests that use a session', async () => {
    const app = await redisApp();
    const cookie = await loggedIn(app);
    suite.server.pause(); // SIGSTOP: Redis calls hang until the command timeout
    const inFlight = [
      whoAmI(app, cookie),
      adminCall(app, cookie),
      whoAmI(app, cookie),
      login(app),
      app.inject({
        method: 'POST',
        url: '/api/admin/redis',
        cookies: { [SESSION_COOKIE]: cookie },
        payload: { enabled: true },
      }),
    ];
    await suite.server.kill();
    const answered = await Promise.all(inFlight);
    expect(answered.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200]);
    expect(answered[0]?.json().admin).toBe(true);
    expect(answered[2]?.json().admin).toBe(true);

    // With Redis gone: the session works from memory; log in, use, log out on this instance.
    for (let i = 0; i < 8; i++) {
      expect((await adminCall(app, cookie)).statusCode).toBe(200);
    }
    const fresh = await loggedIn(app);
    expect((await whoAmI(app, fresh)).json().admin).toBe(true);
    expect((await adminCall(app, fresh)).statusCode).toBe(200);
    await app.inject({ method: 'POST', url: '/api/session/logout', cookies: { [SESSION_COOKIE]: cookie } });
    expect((await adminCall(app, cookie)).statusCode).toBe(401);
    expect(app.cache.stats().namespaces.sessions?.fallbacks).toBeGreaterThan(0);

    // Redis back (empty): what was written meanwhile is replayed; the revoked session stays revoked.
    await suite.server.restart();
    await waitForHealth(app, 'ok', HEALTHY_WITHIN_MS);
    await expect
      .poll(async () => integerReply(await suite.server.command('EXISTS', redisKeyOf(fresh))), {
        timeout: 10_000,
      })
      .toBe(1);
    const other = await redisApp();
    expect((await whoAmI(other, fresh)).json().admin).toBe(true);
    expect((await whoAmI(other, cookie)).json().admin).toBe(false);
  });

  it('logs in and out while Redis is down from the start', async () => {
    await suite.server.kill();
    const app = appFromEnv({ REDIS_URL: suite.server.url });
    const cookie = await loggedIn(app);
    expect((await adminCall(app, cookie)).statusCode).toBe(200);
    const out = await app.inject({
      method: 'POST',
      url: '/api/session/logout',
      cookies: { [SESSION_COOKIE]: cookie },
    });
    expect(out.statusCode).toBe(200);
    expect((await adminCall(app, cookie)).statusCode).toBe(401);
  });
});

describe('LarderSessionStore', () => {
  it('round-trips JSON sessions, expires them after the TTL, and destroys them', async () => {
    const cache = suite.track(createCache({ environment: 'test', redis: { url: suite.server.url } }));
    const store = new LarderSessionStore(cache, { ttlMs: 300 });
    const call = <T>(fn: (cb: (error?: unknown, value?: T) => void) => void) =>
      new Promise<T | undefined>((resolve, reject) => fn((e, v) => (e ? reject(e) : resolve(v))));
    const session = {
      cookie: { originalMaxAge: 300, expires: new Date(), httpOnly: true, path: '/' },
      admin: true,
    } as never;
    await call((cb) => store.set('id-1', session, cb));
    const back = await call((cb) => store.get('id-1', cb));
    expect(back).toMatchObject({ admin: true, cookie: { originalMaxAge: 300, httpOnly: true, path: '/' } });
    expect(typeof (back as { cookie: { expires: unknown } }).cookie.expires).toBe('string');
    await expect.poll(() => call((cb) => store.get('id-1', cb)), { timeout: 5000 }).toBeNull();

    await call((cb) => store.touch('id-2', session, cb));
    expect(await call((cb) => store.get('id-2', cb))).toMatchObject({ admin: true });
    await call((cb) => store.destroy('id-2', cb));
    expect(await call((cb) => store.get('id-2', cb))).toBeNull();
    await call((cb) => store.destroy('never-was', cb));
  });
});

describe('session configuration', () => {
  it('reads SESSION_SECRET (32+ characters) and SESSION_COOKIE_SECURE', () => {
    const config = loadConfig({ SESSION_SECRET: 's'.repeat(32), SESSION_COOKIE_SECURE: 'true' });
    expect(config.sessionSecret?.()).toBe('s'.repeat(32));
    expect(config.sessionCookieSecure).toBe(true);
    expect(JSON.stringify(config)).not.toContain('s'.repeat(32));
    expect(loadConfig({}).sessionCookieSecure).toBe(false);
    expect(() => loadConfig({ SESSION_SECRET: 'short' })).toThrow(ConfigError);
    expect(() => loadConfig({ SESSION_SECRET: 'short' })).toThrow(/SESSION_SECRET.*32/);
    expect(() => loadConfig({ SESSION_COOKIE_SECURE: 'maybe' })).toThrow(/SESSION_COOKIE_SECURE/);
  });

  it('marks the cookie Secure when SESSION_COOKIE_SECURE is on (sent over HTTPS only)', async () => {
    const app = appFromEnv({ SESSION_COOKIE_SECURE: 'true' });
    const res = await login(app);
    expect(res.statusCode).toBe(200);
    // Over plain HTTP @fastify/session will not send a Secure cookie at all.
    expect(sessionCookie(res)).toBeUndefined();
  });
});
