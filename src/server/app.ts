import Fastify, {
  type FastifyInstance,
  type FastifyServerOptions,
  type preHandlerAsyncHookHandler,
} from 'fastify';
import { type Cache, type CacheOptions, createCache, type Logger } from '../index.js';
import type { ServerConfig } from './config.js';
import { type Database, openDatabase } from './db/database.js';
import { runMigrations } from './db/migrate.js';
import { installRateLimit } from './rate-limit/rate-limit.js';
import { adminGuard } from './auth/require-admin.js';
import { DEMO_DATA, type SeedOptions, seedDemoData } from './db/seed.js';
import { ConversationRepository } from './conversations/conversation-repository.js';
import { ConversationService } from './conversations/conversation-service.js';
import { errorHandler, frameworkErrorHandler, notFoundHandler } from './error-handler.js';
import { LeadRepository } from './leads/lead-repository.js';
import { LeadService } from './leads/lead-service.js';
import { HttpCache } from './http-cache/http-cache.js';
import { createJobRunner, type JobsOptions } from './jobs/create-job-runner.js';
import { jobHandlers } from './jobs/handlers.js';
import type { JobRunner } from './jobs/job-runner.js';
import { KpiRepository } from './kpis/kpi-repository.js';
import { kpiTag, KpiService } from './kpis/kpi-service.js';
import { jobRoutes } from './routes/jobs.js';
import { kpiRoutes } from './routes/kpis.js';
import { cacheStatsRoutes } from './routes/cache-stats.js';
import { companyAssistantRoutes } from './routes/company-assistants.js';
import { prototypeRoutes } from './routes/prototypes.js';
import { PrototypeService } from './prototypes/prototype-service.js';
import { createAssistantProvider } from './assistants/create-assistant-provider.js';
import { createMappingStore, type MappingStore } from './company-assistants/mapping-store.js';
import { conversationRoutes } from './routes/conversations.js';
import { healthRoutes } from './routes/health.js';
import { leadRoutes } from './routes/leads.js';
import { registerOpenApi } from './openapi.js';
import { adminRoutes } from './routes/admin.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { demoRoutes } from './routes/demo.js';
import { metricsRoutes } from './routes/metrics.js';
import { LarderSessionStore } from './sessions/larder-session-store.js';
import { createSessions } from './sessions/sessions.js';

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
    /** Background jobs: BullMQ with Redis, inline without. Available once the app is ready. */
    jobs: JobRunner;
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
  /** Retry policy and limits of background jobs (tests shorten the back-off). */
  jobs?: JobsOptions;
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
  const sessions = createSessions({
    store: new LarderSessionStore(cache),
    adminToken: config.adminToken,
    secret: config.sessionSecret,
    secureCookie: config.sessionCookieSecure,
  });
  app.decorate('requireAdmin', adminGuard({ token: config.adminToken, alternatives: [sessions.isAdmin] }));
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
  // Before every route: limits are attached to the /api routes as they are registered.
  installRateLimit(app, {
    config: config.rateLimit,
    environment: config.environment,
    redis: config.redis?.connection(),
  });
  // Before every route: the OpenAPI generator records routes as they are registered.
  registerOpenApi(app);
  app.register(healthRoutes, { config });
  app.register(cacheStatsRoutes);
  app.register(metricsRoutes);
  app.register(dashboardRoutes);
  // Sessions (cookie parsing, store reads, rolling saves) run only for the routes of this context.
  app.register(async (scope) => {
    await scope.register(sessions.plugin);
    await scope.register(adminRoutes);
  });
  // One mapping store for both routes that write mappings, so their saves share one queue.
  let mappings: MappingStore | undefined;
  const mappingStore = (): MappingStore => (mappings ??= createMappingStore(cache, app.db));
  app.register(companyAssistantRoutes, () => ({ store: mappingStore() }));
  app.register(demoRoutes, () => ({ store: mappingStore() }));
  app.register(prototypeRoutes, () => ({
    service: new PrototypeService({
      mappings: mappingStore(),
      provider: createAssistantProvider(config.openai, app.db),
      demoBaseUrl: config.demoBaseUrl,
    }),
  }));
  // Leads, KPIs and jobs share one set of services, made once the database is open: a lead change
  // invalidates the organization's KPIs and their cached HTTP responses.
  const httpCache = new HttpCache({ cache, logger: app.log.child({ component: 'http-cache' }) });
  let domain: { leads: LeadService; kpis: KpiService } | undefined;
  const services = (): { leads: LeadService; kpis: KpiService } => {
    if (domain !== undefined) return domain;
    const kpis = new KpiService({
      repository: new KpiRepository(app.db),
      cache,
      onInvalidate: (orgId) => httpCache.invalidate(orgId, [kpiTag(orgId)]),
    });
    const leads = new LeadService({
      repository: new LeadRepository(app.db),
      cache,
      onLeadChanged: (lead) => kpis.invalidate(lead.organizationId),
    });
    return (domain = { leads, kpis });
  };
  let jobs: JobRunner | undefined;
  app.decorate('jobs', {
    getter(): JobRunner {
      if (jobs === undefined) throw new Error('The job runner starts with the app (ready/listen)');
      return jobs;
    },
  });
  // Workers start once the database is open; they stop before the cache and database close
  // (preClose runs before every onClose hook), after their active jobs finish.
  app.register(async () => {
    const { leads, kpis } = services();
    const handlers = jobHandlers({ leads, kpis, leadRepository: new LeadRepository(app.db) });
    jobs = createJobRunner(config, handlers, app.log.child({ component: 'jobs' }), options.jobs);
    await jobs.started();
  });
  app.addHook('preClose', async () => {
    await jobs?.close();
  });
  // Options as a function: evaluated when the plugin loads, after the database plugin above.
  app.register(leadRoutes, () => ({ service: services().leads }));
  app.register(kpiRoutes, () => ({ service: services().kpis, httpCache }));
  app.register(jobRoutes, () => ({ runner: app.jobs, kpis: services().kpis }));
  app.register(conversationRoutes, () => ({
    service: new ConversationService({
      repository: new ConversationRepository(app.db),
      // Organizations are resolved as lead lookups do (and share their cached entries).
      organizations: new LeadService({ repository: new LeadRepository(app.db), cache }),
      cache,
    }),
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

/** Tenant scopes counted one by one in `/api/cache/stats` (later ones count in their namespace). */
const SERVICE_MAX_TENANTS = 1000;

/** The cache the service runs on: memory only unless Redis is configured and not switched off. */
export function cacheOptions(config: ServerConfig, logger: Logger): CacheOptions {
  return {
    environment: config.environment,
    logger,
    redis: config.redis === undefined ? false : config.redis.connection(),
    // /api/cache/stats reports each organization (tenant) too; the demo data has 24.
    maxTenants: SERVICE_MAX_TENANTS,
  };
}
