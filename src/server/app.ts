import Fastify, {
  type FastifyInstance,
  type FastifyServerOptions,
  type preHandlerAsyncHookHandler,
} from 'fastify';
import { type Cache, type CacheOptions, createCache, type Logger } from '../index.js';
import type { ServerConfig } from './config.js';
import { type Database, openDatabase } from './db/database.js';
import { runMigrations } from './db/migrate.js';
import { adminGuard } from './auth/require-admin.js';
import { DEMO_DATA, type SeedOptions, seedDemoData } from './db/seed.js';
import { errorHandler, frameworkErrorHandler, notFoundHandler } from './error-handler.js';
import { LeadRepository } from './leads/lead-repository.js';
import { LeadService } from './leads/lead-service.js';
import { cacheStatsRoutes } from './routes/cache-stats.js';
import { companyAssistantRoutes } from './routes/company-assistants.js';
import { healthRoutes } from './routes/health.js';
import { leadRoutes } from './routes/leads.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The Larder cache every route reads and writes through. */
    cache: Cache;
    /** The source of truth (Postgres or PGlite), migrated. Available once the app is ready. */
    db: Database;
    /**
     * preHandler of admin routes: lets a request through with `Authorization: Bearer <admin token>`
     * (or a logged-in admin session), else answers 401 `E_UNAUTHORIZED`.
     */
    requireAdmin: preHandlerAsyncHookHandler;
  }
}

/** Options of {@link buildApp}. */
export type BuildAppOptions = {
  config: ServerConfig;
  /**
   * A cache to use instead of creating one from `config`. The caller owns it: the app never
   * closes a cache it was given.
   */
  cache?: Cache;
  /**
   * Fastify's logger (pino): `true`, pino options, or `false` for none. The cache the app creates
   * logs through it too.
   * @default false
   */
  logger?: FastifyServerOptions['logger'];
  /** A pino logger to use instead of `logger` (main.ts logs with it before the app exists). */
  loggerInstance?: FastifyServerOptions['loggerInstance'];
  /**
   * A database to use instead of opening `config.database` (tests pass an in-memory PGlite, or one
   * shared by several app instances). The caller owns it: the app migrates it but never closes it.
   */
  database?: Database;
  /**
   * Demo data to put into the database at start when it has no leads; `false` for none.
   * @default the demo data set (24 organizations × 200 leads) when `config.seedDemoData`, else false
   */
  seed?: false | SeedOptions;
};

// Opening the database is a plugin: a first start in a new PGlite folder runs initdb and seeds the
// demo data, which can pass Fastify's 10 s plugin timeout on a slow or busy machine.
const PLUGIN_TIMEOUT_MS = 120_000;

// Assistant ids may be 128 characters; with find-my-way's default of 100 the router would refuse
// longer ones (414) before the schema could check them.
const MAX_PARAM_LENGTH = 512;

/**
 * Builds the service without listening: `main.ts` listens, tests call `app.inject()`.
 * @throws LarderError `E_INVALID_OPTIONS` when the config cannot make a cache.
 * @example
 * const config = loadConfig(process.env);
 * const app = buildApp({ config, logger: true });
 * await app.listen({ host: config.host, port: config.port });
 */
export function buildApp(options: BuildAppOptions): FastifyInstance {
  const { config } = options;
  const app = Fastify({
    ...(options.loggerInstance === undefined
      ? { logger: options.logger ?? false }
      : { loggerInstance: options.loggerInstance }),
    pluginTimeout: PLUGIN_TIMEOUT_MS,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Fastify coerces types by default ({ "assistantId": 42 } would pass as "42"); bodies here
    // must have the types the schema says, and query/params are strings anyway.
    ajv: { customOptions: { coerceTypes: false } },
    frameworkErrors: frameworkErrorHandler,
  });

  const cache = options.cache ?? createCache(cacheOptions(config, app.log.child({ component: 'larder' })));
  app.decorate('cache', cache);
  app.decorate('requireAdmin', adminGuard({ token: config.adminToken }));
  if (options.cache === undefined) {
    app.addHook('onClose', async () => {
      await cache.close();
    });
  }

  let database: Database | undefined = options.database;
  app.decorate('db', {
    getter(): Database {
      if (database === undefined) throw new Error('The database opens when the app starts (ready/listen)');
      return database;
    },
  });
  if (options.database === undefined) {
    app.addHook('onClose', async () => {
      await database?.close();
    });
  }
  // Plugins load in order, so the routes below are registered with the database open and migrated.
  app.register(async () => {
    database ??= await openDatabase(config.database, { logger: app.log });
    await prepareDatabase(app, database, options.seed ?? (config.seedDemoData ? DEMO_DATA : false));
  });

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  app.register(healthRoutes, { config });
  app.register(cacheStatsRoutes);
  app.register(companyAssistantRoutes);
  // Options as a function: evaluated when the plugin loads, after the database plugin above.
  app.register(leadRoutes, () => ({
    service: new LeadService({ repository: new LeadRepository(app.db), cache }),
  }));
  return app;
}

/** Migrates the database, and seeds demo data when it has no leads yet. */
async function prepareDatabase(app: FastifyInstance, db: Database, seed: false | SeedOptions): Promise<void> {
  const migrated = await runMigrations(db);
  app.log.info(
    { engine: db.engine, location: db.location, version: migrated.version, applied: migrated.applied },
    migrated.applied.length > 0
      ? `database: applied migrations ${migrated.applied.join(', ')}`
      : 'database: schema up to date',
  );
  if (seed === false) return;
  const { rows } = await db.query<{ empty: boolean }>('SELECT NOT EXISTS (SELECT 1 FROM leads) AS empty');
  if (rows[0]?.empty !== true) return;
  const inserted = await seedDemoData(db, seed);
  app.log.info(
    { inserted },
    `database: seeded demo data (${inserted.organizations} organizations, ${inserted.leads} leads)`,
  );
}

/** The cache the service runs on: memory only unless Redis is configured and not switched off. */
export function cacheOptions(config: ServerConfig, logger: Logger): CacheOptions {
  return {
    environment: config.environment,
    logger,
    redis: config.redis === undefined ? false : config.redis.connection(),
  };
}
