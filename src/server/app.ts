import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { type Cache, type CacheOptions, createCache, type Logger } from '../index.js';
import type { ServerConfig } from './config.js';
import { errorHandler, frameworkErrorHandler, notFoundHandler } from './error-handler.js';
import { cacheStatsRoutes } from './routes/cache-stats.js';
import { companyAssistantRoutes } from './routes/company-assistants.js';
import { healthRoutes } from './routes/health.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The Larder cache every route reads and writes through. */
    cache: Cache;
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
};

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
    logger: options.logger ?? false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Fastify coerces types by default ({ "assistantId": 42 } would pass as "42"); bodies here
    // must have the types the schema says, and query/params are strings anyway.
    ajv: { customOptions: { coerceTypes: false } },
    frameworkErrors: frameworkErrorHandler,
  });

  const cache = options.cache ?? createCache(cacheOptions(config, app.log.child({ component: 'larder' })));
  app.decorate('cache', cache);
  if (options.cache === undefined) {
    app.addHook('onClose', async () => {
      await cache.close();
    });
  }

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  app.register(healthRoutes, { config });
  app.register(cacheStatsRoutes);
  app.register(companyAssistantRoutes);
  return app;
}

/** The cache the service runs on: memory only unless Redis is configured and not switched off. */
export function cacheOptions(config: ServerConfig, logger: Logger): CacheOptions {
  return {
    environment: config.environment,
    logger,
    redis: config.redis === undefined ? false : config.redis.connection(),
  };
}
