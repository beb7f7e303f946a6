export { commandCalls, integerReply } from '../support/redis-replies.js';
import type { FastifyInstance } from 'fastify';
import { afterAll } from 'vitest';
import type { Cache } from '../../src/index.js';
import { buildApp } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';
import type { Database } from '../../src/server/db/database.js';
import type { SeedOptions } from '../../src/server/db/seed.js';
import type { JobsOptions } from '../../src/server/jobs/create-job-runner.js';
import { memoryDatabase } from '../support/pglite.js';

/** The admin token of apps built by {@link appFromEnv} (unless the env gives another). */
export const ADMIN_TOKEN = 'test-admin-token-0123456789';

/** Headers that pass `app.requireAdmin` on an app built by {@link appFromEnv}. */
export function adminHeaders(token: string = ADMIN_TOKEN): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** Apps built by a test file; its afterEach closes them. */
export const openedApps: FastifyInstance[] = [];

let shared: Database | undefined;

/**
 * An in-memory PGlite shared by the apps of the calling test file that are given no database of
 * their own; closed after the file's tests. Apps never write to `./data` in tests.
 */
export function sharedDatabase(): Database {
  shared ??= memoryDatabase();
  return shared;
}

// Registered when a test file imports this module, so it belongs to that file's root suite.
afterAll(async () => {
  await shared?.close();
  shared = undefined;
});

/** Options of {@link appFromEnv} beyond the environment. */
export type TestAppOptions = {
  /** @default {@link sharedDatabase} */
  database?: Database;
  /** @default false: tests seed what they need */
  seed?: false | SeedOptions;
  /** Retry policy of background jobs (e.g. a short back-off). @default the service's */
  jobs?: JobsOptions;
};

/**
 * Builds an app from an environment (LARDER_ENV=test unless given) and records it for closing.
 * Its database is the file's {@link sharedDatabase} unless one is given.
 */
export function appFromEnv(
  env: NodeJS.ProcessEnv,
  cache?: Cache,
  options: TestAppOptions = {},
): FastifyInstance {
  const app = buildApp({
    // Rate limiting is off unless a test turns it on: test files send thousands of requests from one IP.
    config: loadConfig({
      LARDER_ENV: 'test',
      LARDER_ADMIN_TOKEN: ADMIN_TOKEN,
      RATE_LIMIT_ENABLED: 'false',
      ...env,
    }),
    cache,
    database: options.database ?? sharedDatabase(),
    seed: options.seed ?? false,
    jobs: options.jobs,
  });
  openedApps.push(app);
  return app;
}

/** Closes every recorded app (and so the caches they created). */
export async function closeApps(): Promise<void> {
  await Promise.all(openedApps.splice(0).map((app) => app.close()));
}

/** Resolves once `GET /api/health` reports `status`, polling; throws after `timeoutMs`. */
export async function waitForHealth(
  app: FastifyInstance,
  status: 'ok' | 'degraded' = 'ok',
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const res = await app.inject({ method: 'GET', url: '/api/health' });
    if (res.json<{ status: string }>().status === status) return;
    last = res.body;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`health not ${status} within ${timeoutMs} ms; last: ${last}`);
}

/** Redis key of an entry of the mapping namespace, for LARDER_ENV=test. */
export function mappingKey(key: string): string {
  return `larder:test:1:d:company-assistants:${key.replace(':', '%3A')}`;
}

/** POST /api/company-assistants. */
export function postMapping(app: FastifyInstance, body: unknown) {
  return app.inject({ method: 'POST', url: '/api/company-assistants', payload: body as object });
}

/** GET /api/company-assistant?slug=. */
export function getBySlug(app: FastifyInstance, slug: string) {
  return app.inject({ method: 'GET', url: '/api/company-assistant', query: { slug } });
}

/** GET /api/assistants/:assistantId/company. */
export function getByAssistant(app: FastifyInstance, assistantId: string) {
  return app.inject({ method: 'GET', url: `/api/assistants/${encodeURIComponent(assistantId)}/company` });
}

/** A database that records every statement run through `query` (not inside transactions). */
export function recordingDatabase(db: Database): { db: Database; statements: string[] } {
  const statements: string[] = [];
  return {
    statements,
    db: {
      engine: db.engine,
      location: db.location,
      query(sql, params) {
        statements.push(sql.replace(/\s+/g, ' ').trim());
        return db.query(sql, params);
      },
      exec: (sql) => db.exec(sql),
      transaction: (fn) => db.transaction(fn),
      close: () => db.close(),
    },
  };
}

/** GET /api/leads/lookup. */
export function lookupLead(app: FastifyInstance, phone: string, org?: string) {
  return app.inject({
    method: 'GET',
    url: '/api/leads/lookup',
    query: org === undefined ? { phone } : { phone, org },
  });
}

/** PATCH /api/leads/:id. */
export function patchLead(app: FastifyInstance, id: string, body: unknown) {
  return app.inject({
    method: 'PATCH',
    url: `/api/leads/${encodeURIComponent(id)}`,
    payload: body as object,
  });
}

/**
 * A database whose statements matching `pattern` wait while the gate is closed, to hold requests
 * mid-load (`close()`, then `open()`); `state.waiting` counts the statements held.
 */
export function gatedDatabase(inner: Database, pattern: RegExp) {
  let release: (() => void) | undefined;
  let gate: Promise<void> | undefined;
  const state = { waiting: 0 };
  const database: Database = {
    engine: inner.engine,
    location: inner.location,
    async query(sql, params) {
      if (gate !== undefined && pattern.test(sql)) {
        state.waiting++;
        await gate;
        state.waiting--;
      }
      return inner.query(sql, params);
    },
    exec: (sql) => inner.exec(sql),
    transaction: (fn) => inner.transaction(fn),
    close: () => inner.close(),
  };
  return {
    database,
    state,
    close() {
      gate = new Promise((resolve) => (release = resolve));
    },
    open() {
      gate = undefined;
      release?.();
    },
  };
}

/** An app on the Redis at `redisUrl` and on `database`, returned once its health is `ok`. */
export async function healthyApp(redisUrl: string, database: Database): Promise<FastifyInstance> {
  const app = appFromEnv({ REDIS_URL: redisUrl }, undefined, { database });
  await waitForHealth(app, 'ok');
  return app;
}

let phonesHandedOut = 0;

/** A valid US number (+1 415 555 …) no test of this file has used yet. */
export function unusedPhone(): string {
  phonesHandedOut += 1;
  return `+1415555${String(1100 + phonesHandedOut).slice(-4)}`;
}
