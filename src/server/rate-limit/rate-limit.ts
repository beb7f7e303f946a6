import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onRequestAsyncHookHandler,
  preValidationAsyncHookHandler,
  RouteOptions,
} from 'fastify';
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from 'rate-limiter-flexible';
import type { RedisConnection } from '../../index.js';
import type { RateLimitConfig } from '../config.js';
import { ServiceError, ServiceErrorCode } from '../errors.js';
import { createLimiterClient } from './limiter-client.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false` exempts a route from rate limiting (see {@link isRateLimited}). */
    rateLimit?: boolean;
  }
}

/** The window of every limit: limits are requests per minute. */
export const RATE_LIMIT_WINDOW_SECONDS = 60;

/** Path prefixes that are never limited: health, stats and admin routes. `/metrics` is outside `/api`. */
export const RATE_LIMIT_EXEMPT_PREFIXES: readonly string[] = [
  '/api/health',
  '/api/cache/stats',
  '/api/admin',
];

/** Longest `org` used as a tenant key; longer ones are refused by the routes' schemas anyway. */
const MAX_TENANT_LENGTH = 128;

/** Options of {@link installRateLimit}. */
export type RateLimitOptions = {
  config: RateLimitConfig;
  /** The service's environment (`LARDER_ENV`): the first segment of every counter key. */
  environment: string;
  /** Where the shared counters live; `undefined` counts in memory, per instance. */
  redis: RedisConnection | undefined;
};

/** One limit's state after a request was counted. */
type Counted = { limit: number; res: RateLimiterRes; allowed: boolean };

/** What a route's limits said about the request so far (the binding one sets the headers). */
const counted = new WeakMap<FastifyRequest, Counted>();

/**
 * Whether a route is rate limited: every `/api/*` route except the health, stats and admin routes
 * ({@link RATE_LIMIT_EXEMPT_PREFIXES}), routes guarded by `app.requireAdmin`, and routes with
 * `config: { rateLimit: false }`. Routes outside `/api` (`/metrics`, the dashboard, `/docs`) are
 * not limited.
 */
export function isRateLimited(
  route: Pick<RouteOptions, 'url' | 'config' | 'preHandler'>,
  adminGuard?: unknown,
): boolean {
  const config = route.config as { rateLimit?: boolean } | undefined;
  if (config?.rateLimit === false) return false;
  const url = route.url;
  if (!url.startsWith('/api/')) return false;
  if (RATE_LIMIT_EXEMPT_PREFIXES.some((prefix) => url === prefix || url.startsWith(`${prefix}/`)))
    return false;
  const preHandlers = route.preHandler === undefined ? [] : [route.preHandler].flat();
  return adminGuard === undefined || !preHandlers.includes(adminGuard as never);
}

/**
 * The tenant a request names: its `org` query parameter, else the `org` field of its JSON body
 * (lowercased, so that the case of a UUID does not make another tenant). `undefined` when it names
 * none, or not as one string: such requests are limited per IP only. The tenant is the reference
 * as given, not the organization it resolves to: an organization's slug, id and phone number count
 * separately.
 */
export function tenantOf(request: FastifyRequest): string | undefined {
  const fromQuery = (request.query as { org?: unknown } | undefined)?.org;
  const body = request.body;
  const fromBody =
    typeof body === 'object' && body !== null && !Array.isArray(body)
      ? (body as { org?: unknown }).org
      : undefined;
  const org = fromQuery ?? fromBody;
  if (typeof org !== 'string' || org.length === 0 || org.length > MAX_TENANT_LENGTH) return undefined;
  return org.toLowerCase();
}

/**
 * Rate limits the public API per client IP and per tenant with rate-limiter-flexible, on the
 * service's root instance (call it before the routes are registered):
 *
 * - per IP (`request.ip`), `config.perIp` requests a minute, counted when the request arrives;
 * - per tenant ({@link tenantOf}), `config.perTenant` requests a minute, counted once the body is
 *   parsed.
 *
 * With Redis configured the counters live in Redis (`RateLimiterRedis`), shared by every instance,
 * under `larder:<environment>:rate-limit:{ip|tenant}:<key>` so that environments sharing a Redis do
 * not meet; while Redis is unreachable or slow, a `RateLimiterMemory` insurance limiter counts in
 * this process instead (the limits still hold, per instance), and the Redis counters are used
 * again as soon as it answers. Without Redis, memory limiters only.
 *
 * Every response of a limited route carries `RateLimit-Limit`, `RateLimit-Remaining`,
 * `RateLimit-Reset` (seconds) and `RateLimit-Policy` for the limit closest to running out; a
 * refused request is a 429 `E_RATE_LIMITED` with `Retry-After` (seconds). Does nothing when
 * `config.enabled` is false. The Redis client is closed with the app.
 */
export function installRateLimit(app: FastifyInstance, options: RateLimitOptions): void {
  const { config } = options;
  if (!config.enabled) return;

  const client =
    options.redis === undefined
      ? undefined
      : createLimiterClient(options.redis, {
          onDown: (message) =>
            app.log.warn(`rate limit: Redis unreachable (${message}); counting in memory per instance`),
          onUp: () => app.log.info('rate limit: Redis is back; counters are shared again'),
        });
  if (client !== undefined) {
    app.addHook('onClose', async () => {
      client.disconnect();
    });
  }
  const limiter = (kind: 'ip' | 'tenant', points: number): RateLimiterAbstract => {
    const keyPrefix = `larder:${options.environment}:rate-limit:${kind}`;
    const memory = new RateLimiterMemory({ keyPrefix, points, duration: RATE_LIMIT_WINDOW_SECONDS });
    if (client === undefined) return memory;
    return new RateLimiterRedis({
      storeClient: client,
      keyPrefix,
      points,
      duration: RATE_LIMIT_WINDOW_SECONDS,
      insuranceLimiter: memory,
      // Not ready (connecting, reconnecting): straight to the memory limiter, no attempt.
      rejectIfRedisNotReady: true,
    });
  };
  const perIp = limiter('ip', config.perIp);
  const perTenant = limiter('tenant', config.perTenant);

  const limitIp: onRequestAsyncHookHandler = async (request, reply) => {
    await enforce(request, reply, perIp, config.perIp, request.ip, `from IP ${request.ip}`);
  };
  const limitTenant: preValidationAsyncHookHandler = async (request, reply) => {
    const tenant = tenantOf(request);
    if (tenant === undefined) return;
    await enforce(
      request,
      reply,
      perTenant,
      config.perTenant,
      tenant,
      `for organization ${JSON.stringify(tenant)}`,
    );
  };

  app.addHook('onRoute', (route) => {
    const guard = app.hasDecorator('requireAdmin') ? app.requireAdmin : undefined;
    if (!isRateLimited(route, guard)) return;
    route.onRequest = [limitIp, ...(route.onRequest === undefined ? [] : [route.onRequest].flat())];
    route.preValidation = [
      limitTenant,
      ...(route.preValidation === undefined ? [] : [route.preValidation].flat()),
    ];
  });

  async function enforce(
    request: FastifyRequest,
    reply: FastifyReply,
    rateLimiter: RateLimiterAbstract,
    limit: number,
    key: string,
    subject: string,
  ): Promise<void> {
    let result: Counted;
    try {
      result = { limit, res: await rateLimiter.consume(encodeURIComponent(key)), allowed: true };
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) {
        // The memory insurance limiter does not fail; should anything else, let the request through.
        request.log.error({ err: error }, 'rate limit: limiter failed; request not limited');
        return;
      }
      result = { limit, res: error, allowed: false };
    }
    const previous = counted.get(request);
    const binding =
      previous === undefined || !result.allowed || result.res.remainingPoints < previous.res.remainingPoints
        ? result
        : previous;
    counted.set(request, binding);
    const resetSeconds = Math.max(0, Math.ceil(binding.res.msBeforeNext / 1000));
    reply.header('ratelimit-limit', binding.limit);
    reply.header('ratelimit-remaining', binding.res.remainingPoints);
    reply.header('ratelimit-reset', resetSeconds);
    reply.header('ratelimit-policy', `${binding.limit};w=${RATE_LIMIT_WINDOW_SECONDS}`);
    if (result.allowed) return;
    const retryAfter = Math.max(1, resetSeconds);
    reply.header('retry-after', retryAfter);
    throw new ServiceError(
      ServiceErrorCode.RateLimited,
      `Too many requests ${subject}: the limit is ${limit} per minute; retry in ${retryAfter} s`,
    );
  }
}
