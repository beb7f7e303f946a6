import type { FastifyPluginAsync } from 'fastify';
import type { CacheScope } from '../../index.js';
import { ServiceError, ServiceErrorCode } from '../errors.js';

type InvalidateBody = { namespace: string; tenant?: string; tag?: string };
type RedisBody = { enabled: boolean };

const invalidateSchema = {
  tags: ['admin'],
  summary: 'Invalidate a tag, or clear a namespace or a tenant of it',
  security: [{ adminToken: [] }],
  body: {
    type: 'object',
    required: ['namespace'],
    properties: {
      // Larder checks the characters (E_INVALID_NAMESPACE, E_INVALID_TENANT, E_INVALID_TAG: 400).
      namespace: { type: 'string', minLength: 1, maxLength: 256 },
      tenant: { type: 'string', minLength: 1, maxLength: 256 },
      tag: { type: 'string', minLength: 1, maxLength: 256 },
    },
  },
} as const;

const redisSchema = {
  tags: ['admin'],
  summary: 'Kill switch: stop or resume every use of Redis (the cache falls back to memory)',
  security: [{ adminToken: [] }],
  body: {
    type: 'object',
    required: ['enabled'],
    properties: { enabled: { type: 'boolean' } },
  },
} as const;

/**
 * Admin routes; each needs the admin token (`Authorization: Bearer`) or an admin session.
 * - `POST /api/admin/invalidate` `{ namespace, tenant?, tag? }`: with `tag`, `deleteByTag(tag)` in
 *   that namespace (and tenant); without, `clear()` of the namespace (or of the tenant in it). Both
 *   are O(1) version bumps, seen by every instance. → `{ namespace, tenant?, tag?, action }`
 * - `POST /api/admin/redis` `{ enabled }`: Larder's run-time kill switch
 *   (`cache.setRedisEnabled`). → `{ redis: { enabled, switchedOff, circuit, ready } }`
 */
export const adminRoutes: FastifyPluginAsync = async (app) => {
  app.post<{ Body: InvalidateBody }>(
    '/api/admin/invalidate',
    { schema: invalidateSchema, preHandler: app.requireAdmin },
    async (request) => {
      rejectUnknown(request.body, Object.keys(invalidateSchema.body.properties));
      const { namespace, tenant, tag } = request.body;
      let scope: CacheScope = app.cache.namespace(namespace);
      if (tenant !== undefined) scope = scope.forTenant(tenant);
      if (tag !== undefined) await scope.deleteByTag(tag);
      else await scope.clear();
      request.log.info({ namespace, tenant, tag }, 'admin: cache invalidated');
      return {
        namespace,
        ...(tenant === undefined ? {} : { tenant }),
        ...(tag === undefined ? {} : { tag }),
        action: tag === undefined ? 'clear' : 'deleteByTag',
      };
    },
  );

  app.post<{ Body: RedisBody }>(
    '/api/admin/redis',
    { schema: redisSchema, preHandler: app.requireAdmin },
    async (request) => {
      rejectUnknown(request.body, Object.keys(redisSchema.body.properties));
      app.cache.setRedisEnabled(request.body.enabled);
      const { enabled, switchedOff, circuit, ready } = app.cache.stats().redis;
      request.log.warn({ enabled: request.body.enabled }, 'admin: Redis kill switch');
      return { redis: { enabled, switchedOff, circuit, ready } };
    },
  );
};

/**
 * Refuses properties the route does not know. Not `additionalProperties: false`: Fastify's Ajv
 * would silently drop them, and `{ namespace, tags }` must not clear a whole namespace over a typo.
 */
function rejectUnknown(body: object, known: readonly string[]): void {
  const unknown = Object.keys(body).find((name) => !known.includes(name));
  if (unknown !== undefined) {
    throw new ServiceError(
      ServiceErrorCode.Validation,
      `body/${unknown} is not a known property (expected ${known.join(', ')})`,
    );
  }
}
