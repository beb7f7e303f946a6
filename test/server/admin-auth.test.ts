import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { loadOrCreateAdminToken } from '../../src/server/auth/admin-token.js';
import { adminGuard } from '../../src/server/auth/require-admin.js';
import { ConfigError, loadConfig } from '../../src/server/config.js';
import { errorHandler } from '../../src/server/error-handler.js';

const TOKEN = 'admin-token-for-this-test';

function guardedApp(token: string | undefined, alternatives: Array<() => boolean> = []) {
  const app = Fastify();
  app.setErrorHandler(errorHandler);
  const guard = adminGuard({ token: token === undefined ? undefined : () => token, alternatives });
  app.post('/admin', { preHandler: guard }, async () => ({ ok: true }));
  return app;
}

describe('adminGuard', () => {
  it('lets the bearer token through and refuses anything else with 401 E_UNAUTHORIZED', async () => {
    const app = guardedApp(TOKEN);
    const ok = await app.inject({
      method: 'POST',
      url: '/admin',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(ok.statusCode).toBe(200);

    for (const authorization of [
      undefined,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(1)}`,
      TOKEN,
      'Basic abc',
    ]) {
      const res = await app.inject({
        method: 'POST',
        url: '/admin',
        headers: authorization === undefined ? {} : { authorization },
      });
      expect(res.statusCode, String(authorization)).toBe(401);
      expect(res.json().error.code).toBe('E_UNAUTHORIZED');
      expect(res.body).not.toContain(TOKEN);
    }
  });

  it('refuses every call when no token is configured, saying how to set one', async () => {
    const res = await guardedApp(undefined).inject({
      method: 'POST',
      url: '/admin',
      headers: { authorization: 'Bearer undefined' },
    });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.message).toMatch(/LARDER_ADMIN_TOKEN/);
  });

  it('accepts a request an alternative vouches for (an admin session)', async () => {
    const res = await guardedApp(TOKEN, [() => true]).inject({ method: 'POST', url: '/admin' });
    expect(res.statusCode).toBe(200);
  });
});

describe('LARDER_ADMIN_TOKEN', () => {
  it('is read behind a function and refused when short, without echoing it', () => {
    const config = loadConfig({ LARDER_ADMIN_TOKEN: TOKEN });
    expect(config.adminToken?.()).toBe(TOKEN);
    expect(JSON.stringify(config)).not.toContain(TOKEN);
    expect(loadConfig({}).adminToken).toBeUndefined();

    const error = (() => {
      try {
        loadConfig({ LARDER_ADMIN_TOKEN: 'short-secret' });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('LARDER_ADMIN_TOKEN');
    expect((error as Error).message).not.toContain('short-secret');
  });
});

describe('loadOrCreateAdminToken', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });

  it('generates a token once, keeps it with mode 0600, and reads the same one afterwards', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'larder-admin-'));
    dirs.push(dir);
    const dataDir = join(dir, 'data');
    const first = await loadOrCreateAdminToken(dataDir);
    expect(first.source).toBe('generated');
    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await stat(first.path)).mode & 0o777).toBe(0o600);

    const second = await loadOrCreateAdminToken(dataDir);
    expect(second).toEqual({ ...first, source: 'file' });
    expect((await readFile(first.path, 'utf8')).trim()).toBe(first.token);
  });

  it('gives concurrent first starts the same token', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'larder-admin-'));
    dirs.push(dir);
    const tokens = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateAdminToken(dir)));
    expect(new Set(tokens.map((t) => t.token)).size).toBe(1);
  });

  it('refuses an empty token file with a message saying what to do', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'larder-admin-'));
    dirs.push(dir);
    await writeFile(join(dir, 'admin-token'), '\n');
    await expect(loadOrCreateAdminToken(dir)).rejects.toThrow(/is empty: delete it/);
  });
});
