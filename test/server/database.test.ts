import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';
import type { Database } from '../../src/server/db/database.js';
import { loadMigrations, MIGRATIONS_DIR, runMigrations } from '../../src/server/db/migrate.js';
import { DEMO_DATA, seedDemoData } from '../../src/server/db/seed.js';
import { toE164 } from '../../src/server/leads/phone.js';
import { memoryDatabase, memoryPGlite } from '../support/pglite.js';
import { freePort } from '../support/redis-server.js';
import { closeApps, openedApps } from './helpers.js';

const databases: Database[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  await closeApps();
  await Promise.all(databases.splice(0).map((db) => db.close()));
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function freshDatabase(): Database {
  const db = memoryDatabase();
  databases.push(db);
  return db;
}

async function tables(db: Database): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
  );
  return rows.map((r) => r.name);
}

async function count(db: Database, sql: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT (${sql})::int AS n`);
  return rows[0]?.n ?? Number.NaN;
}

describe('migrations', () => {
  it('apply once, and are a no-op afterwards', async () => {
    const db = freshDatabase();
    const all = await loadMigrations();
    const versions = all.map((m) => m.version);
    const latest = versions.at(-1);
    expect(await runMigrations(db)).toEqual({ applied: versions, version: latest });
    expect(await tables(db)).toEqual(
      expect.arrayContaining(['leads', 'organization_phone_numbers', 'organizations', 'schema_migrations']),
    );
    expect(await runMigrations(db)).toEqual({ applied: [], version: latest });
    expect(await runMigrations(db)).toEqual({ applied: [], version: latest });
    const { rows } = await db.query('SELECT version, name FROM schema_migrations ORDER BY version');
    expect(rows).toEqual(all.map(({ version, name }) => ({ version, name })));
  });

  it('run concurrently on one database apply each migration once', async () => {
    const db = freshDatabase();
    const versions = (await loadMigrations()).map((m) => m.version);
    const results = await Promise.all([runMigrations(db), runMigrations(db), runMigrations(db)]);
    expect(results.map((r) => r.applied).flat()).toEqual(versions);
    expect(await count(db, 'SELECT count(*) FROM schema_migrations')).toBe(versions.length);
  });

  it('run in one transaction: a failing migration leaves the schema untouched', async () => {
    const db = freshDatabase();
    const real = await loadMigrations();
    const next = real.length + 1;
    const migrations = [
      ...real,
      {
        version: next,
        name: `${String(next).padStart(3, '0')}_broken.sql`,
        sql: 'CREATE TABLE half_done (a int);\nSELECT no_such_column FROM leads;',
      },
    ];
    await expect(runMigrations(db, migrations)).rejects.toThrow(
      /Migration \d+_broken\.sql failed: .*no_such_column/,
    );
    // None stayed: they ran in the one transaction that was rolled back.
    expect(await tables(db)).toEqual([]);
    expect(await runMigrations(db)).toEqual({ applied: real.map((m) => m.version), version: real.length });
  });

  it('refuse a database whose schema is newer than the service', async () => {
    const db = freshDatabase();
    await runMigrations(db);
    await db.query("INSERT INTO schema_migrations (version, name) VALUES (99, '099_future.sql')");
    const latest = (await loadMigrations()).length;
    await expect(runMigrations(db)).rejects.toThrow(
      new RegExp(`schema version 99, newer than .* latest migration \\(${latest}\\)`),
    );
  });

  it('are read from numbered files, without gaps', async () => {
    const names = (await loadMigrations(MIGRATIONS_DIR)).map((m) => m.name);
    expect(names[0]).toBe('001_init.sql');
    expect(names.every((name, i) => name.startsWith(`${String(i + 1).padStart(3, '0')}_`))).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'larder-migrations-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, '001_a.sql'), 'SELECT 1;');
    writeFileSync(join(dir, '003_c.sql'), 'SELECT 1;');
    writeFileSync(join(dir, 'README.md'), 'not a migration');
    await expect(loadMigrations(dir)).rejects.toThrow(/without gaps; found 003_c\.sql at position 2/);
    await expect(loadMigrations(join(dir, 'missing'))).rejects.toThrow(/Cannot read migrations/);
  });
});

describe('schema', () => {
  it('keeps phones in E.164, one lead per phone and organization, one default organization', async () => {
    const db = freshDatabase();
    await runMigrations(db);
    await db.query(
      "INSERT INTO organizations (id, name, slug, is_default) VALUES ('00000000-0000-4000-8000-000000000001', 'A', 'a', true)",
    );
    const org = '00000000-0000-4000-8000-000000000001';
    await expect(
      db.query('INSERT INTO leads (organization_id, phone) VALUES ($1, $2)', [org, '4155550123']),
    ).rejects.toThrow(/check constraint/);
    await db.query('INSERT INTO leads (organization_id, phone) VALUES ($1, $2)', [org, '+14155550123']);
    await expect(
      db.query('INSERT INTO leads (organization_id, phone) VALUES ($1, $2)', [org, '+14155550123']),
    ).rejects.toThrow(/leads_organization_phone/);
    await expect(
      db.query("INSERT INTO organizations (name, slug, is_default) VALUES ('B', 'b', true)"),
    ).rejects.toThrow(/organizations_single_default/);
    await expect(
      db.query("INSERT INTO leads (organization_id, phone, status) VALUES ($1, '+14155550124', 'maybe')", [
        org,
      ]),
    ).rejects.toThrow(/check constraint/);
  });
});

describe('seedDemoData', () => {
  it(`fills ${DEMO_DATA.organizations} organizations × ${DEMO_DATA.leadsPerOrg} leads with valid, realistic data`, async () => {
    const db = freshDatabase();
    await runMigrations(db);
    const inserted = await seedDemoData(db, { organizations: 24, leadsPerOrg: 200 });
    expect(inserted.organizations).toBe(24);
    expect(inserted.leads).toBe(4800);
    expect(inserted.phoneNumbers).toBeGreaterThanOrEqual(24);
    expect(await count(db, 'SELECT count(*) FROM organizations')).toBe(24);
    expect(await count(db, 'SELECT count(*) FROM leads')).toBe(4800);
    expect(await count(db, 'SELECT count(*) FROM organizations WHERE is_default')).toBe(1);
    const perOrg = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM leads GROUP BY organization_id',
    );
    expect(new Set(perOrg.rows.map((r) => r.n))).toEqual(new Set([200]));
    // Every organization is reachable on at least one number.
    expect(
      await count(
        db,
        'SELECT count(*) FROM organizations o WHERE NOT EXISTS (SELECT 1 FROM organization_phone_numbers p WHERE p.organization_id = o.id)',
      ),
    ).toBe(0);
    // Every number is E.164 and valid for libphonenumber-js; some callers reached two organizations.
    const phones = await db.query<{ phone: string }>(
      'SELECT phone FROM leads UNION ALL SELECT phone FROM organization_phone_numbers',
    );
    for (const { phone } of phones.rows) expect(toE164(phone)).toBe(phone);
    expect(
      await count(db, 'SELECT count(*) FROM (SELECT phone FROM leads GROUP BY phone HAVING count(*) > 1) s'),
    ).toBeGreaterThan(50);
    expect(await count(db, "SELECT count(*) FROM leads WHERE phone NOT LIKE '+1%'")).toBeGreaterThan(300);
    // Every status occurs; timestamps are ordered.
    const statuses = await db.query<{ status: string }>('SELECT DISTINCT status FROM leads ORDER BY 1');
    expect(statuses.rows.map((r) => r.status)).toEqual([
      'contacted',
      'converted',
      'lost',
      'new',
      'qualified',
    ]);
    expect(await count(db, 'SELECT count(*) FROM leads WHERE updated_at < created_at')).toBe(0);
  });

  it('is deterministic and idempotent', async () => {
    const [a, b] = [freshDatabase(), freshDatabase()];
    await Promise.all([runMigrations(a), runMigrations(b)]);
    await seedDemoData(a, { organizations: 5, leadsPerOrg: 40 });
    await seedDemoData(b, { organizations: 5, leadsPerOrg: 40 });
    const dump = async (db: Database) =>
      (
        await db.query(
          `SELECT l.*, o.slug, o.name AS org_name, o.is_default FROM leads l JOIN organizations o ON o.id = l.organization_id ORDER BY l.id`,
        )
      ).rows;
    const first = await dump(a);
    expect(first).toHaveLength(200);
    expect(await dump(b)).toEqual(first);
    expect(await seedDemoData(a, { organizations: 5, leadsPerOrg: 40 })).toEqual({
      organizations: 0,
      phoneNumbers: 0,
      leads: 0,
    });
    expect(await dump(a)).toEqual(first);
    // Another seed is other data.
    const c = freshDatabase();
    await runMigrations(c);
    await seedDemoData(c, { organizations: 5, leadsPerOrg: 40, seed: 2 });
    expect((await dump(c)).map((r) => r.id)).not.toEqual(first.map((r) => r.id));
  });

  it('keeps an existing default organization, and rejects sizes out of range', async () => {
    const db = freshDatabase();
    await runMigrations(db);
    await db.query("INSERT INTO organizations (name, slug, is_default) VALUES ('Mine', 'mine', true)");
    expect(await seedDemoData(db, { organizations: 3, leadsPerOrg: 2 })).toMatchObject({
      organizations: 3,
      leads: 6,
    });
    const defaults = await db.query<{ slug: string }>('SELECT slug FROM organizations WHERE is_default');
    expect(defaults.rows).toEqual([{ slug: 'mine' }]);
    for (const bad of [
      { organizations: 0 },
      { leadsPerOrg: 1.5 },
      { organizations: 1001 },
      { leadsPerOrg: -1 },
    ]) {
      await expect(seedDemoData(db, bad)).rejects.toThrow(
        /Expected `(organizations|leadsPerOrg)` to be an integer/,
      );
    }
  });
});

describe('the app and its database', () => {
  it('migrates and seeds an empty database at start, once', async () => {
    const db = freshDatabase();
    const config = loadConfig({ LARDER_ENV: 'test' });
    const first = buildApp({ config, database: db, seed: { organizations: 3, leadsPerOrg: 5 } });
    openedApps.push(first);
    await first.ready();
    expect(await count(db, 'SELECT count(*) FROM leads')).toBe(15);
    // A second instance (or a restart) finds leads and seeds nothing, even with other sizes.
    const second = buildApp({ config, database: db, seed: { organizations: 10, leadsPerOrg: 10 } });
    openedApps.push(second);
    await second.ready();
    expect(await count(db, 'SELECT count(*) FROM leads')).toBe(15);
    const health = await second.inject({ method: 'GET', url: '/api/health' });
    expect(health.statusCode).toBe(200);
    expect(health.json().checks.database).toEqual({
      engine: 'pglite',
      location: 'memory',
      reachable: true,
      latencyMs: expect.any(Number),
    });
    // The app does not close a database it was given.
    await closeApps();
    expect(await count(db, 'SELECT count(*) FROM leads')).toBe(15);
  });

  it('reports an unreachable database as degraded, still 200', async () => {
    const db = freshDatabase();
    const app = buildApp({ config: loadConfig({ LARDER_ENV: 'test' }), database: db, seed: false });
    openedApps.push(app);
    await app.ready();
    await db.close();
    const res = await app.inject({ method: 'GET', url: '/api/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      status: 'degraded',
      reason: expect.stringMatching(/Database unreachable: /),
      checks: { database: { engine: 'pglite', reachable: false, error: expect.any(String) } },
    });
  });

  it('keeps PGlite in DATA_DIR/pglite across restarts (what `npm start` does)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'larder-data-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const config = loadConfig({ LARDER_ENV: 'test', DATA_DIR: dir });
    expect(config.database).toEqual({ engine: 'pglite', dataDir: join(dir, 'pglite') });
    expect(config.seedDemoData).toBe(true);

    const first = buildApp({ config, seed: { organizations: 2, leadsPerOrg: 3 } });
    await first.ready();
    const lookup = await first.inject({
      method: 'GET',
      url: '/api/leads/lookup',
      query: { phone: '+14155550123' },
    });
    expect(lookup.statusCode).toBe(200);
    const health = (await first.inject({ method: 'GET', url: '/api/health' })).json();
    expect(health.checks.database).toMatchObject({
      engine: 'pglite',
      location: join(dir, 'pglite'),
      reachable: true,
    });
    // PGlite is one process's database: a second app on the folder is refused while the first runs.
    const intruder = buildApp({ config, seed: false });
    await expect(intruder.ready()).rejects.toThrow(
      `The PGlite folder ${join(dir, 'pglite')} is in use by process ${process.pid} (this one)`,
    );
    await intruder.close();
    await first.close(); // closes the database it opened, and unlocks the folder
    // A lock left by a process that died (kill -9) is taken over.
    writeFileSync(join(dir, 'pglite.lock'), String(spawnSync('true').pid));

    const second = buildApp({ config, seed: { organizations: 2, leadsPerOrg: 3 } });
    openedApps.push(second);
    const again = await second.inject({
      method: 'GET',
      url: '/api/leads/lookup',
      query: { phone: '(415) 555-0123' },
    });
    expect(again.json().lead).toEqual(lookup.json().lead);
    expect(await count(second.db, 'SELECT count(*) FROM leads')).toBe(7);
    await second.close();
    expect(existsSync(join(dir, 'pglite.lock'))).toBe(false);
  }, 60_000);

  it('runs on a Postgres server through node-postgres when DATABASE_URL is set', async () => {
    // PGlite behind its wire-protocol server stands in for Postgres: a real pg client, a real socket.
    const pglite = memoryPGlite();
    const port = await freePort();
    const server = new PGLiteSocketServer({ db: pglite, host: '127.0.0.1', port, maxConnections: 10 });
    await server.start();
    cleanups.push(() => pglite.close());
    cleanups.push(() => server.stop());

    const config = loadConfig({
      LARDER_ENV: 'test',
      DATABASE_URL: `postgres://postgres:s3cret@127.0.0.1:${port}/postgres`,
      SEED_DEMO_DATA: 'true',
    });
    expect(config.database).toMatchObject({
      engine: 'postgres',
      endpoint: `postgres://postgres:***@127.0.0.1:${port}/postgres`,
    });
    const app = buildApp({ config, seed: { organizations: 2, leadsPerOrg: 4 } });
    openedApps.push(app);
    await app.ready();
    expect(await count(app.db, 'SELECT count(*) FROM leads')).toBe(8);
    const first = await app.inject({
      method: 'GET',
      url: '/api/leads/lookup',
      query: { phone: '+1 212 555 0147' },
    });
    expect(first.statusCode).toBe(200);
    expect(first.json().lead).toMatchObject({ phone: '+12125550147', status: 'new' });
    const patched = await app.inject({
      method: 'PATCH',
      url: `/api/leads/${first.json().lead.id}`,
      payload: { status: 'contacted' },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().status).toBe('contacted');
    const health = await app.inject({ method: 'GET', url: '/api/health' });
    expect(health.json().checks.database).toMatchObject({
      engine: 'postgres',
      location: `postgres://postgres:***@127.0.0.1:${port}/postgres`,
      reachable: true,
    });
    expect(health.body).not.toContain('s3cret');
  });

  it('fails to start, naming the endpoint without its password, when Postgres is unreachable', async () => {
    const port = await freePort();
    const app = buildApp({
      config: loadConfig({ LARDER_ENV: 'test', DATABASE_URL: `postgres://u:s3cret@127.0.0.1:${port}/db` }),
    });
    const error = await app.ready().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toMatch(
      new RegExp(`Cannot reach Postgres at postgres://u:\\*\\*\\*@127\\.0\\.0\\.1:${port}/db`),
    );
    expect(error?.message).not.toContain('s3cret');
    await app.close();
  });
});
