import type { FastifyPluginAsync } from 'fastify';

type StatsQuery = { tenants?: boolean; namespace?: string };

const statsSchema = {
  querystring: {
    type: 'object',
    properties: {
      tenants: { type: 'string', enum: ['true', 'false'] },
      namespace: { type: 'string', minLength: 1, maxLength: 256 },
    },
    additionalProperties: false,
  },
} as const;

/**
 * `GET /api/cache/stats`: Larder's counters per namespace and per tenant (organization), tier sizes
 * and circuit state. No I/O.
 * - `?tenants=false` leaves the per-tenant counts out (the dashboard polls without them);
 * - `?namespace=leads` keeps only that namespace's tenants.
 */
export const cacheStatsRoutes: FastifyPluginAsync = async (app) => {
  app.get<{ Querystring: { tenants?: string; namespace?: string } }>(
    '/api/cache/stats',
    { schema: statsSchema },
    async (request) => {
      const query: StatsQuery = {
        tenants: request.query.tenants !== 'false',
        namespace: request.query.namespace,
      };
      const stats = app.cache.stats();
      if (query.tenants === false) return { ...stats, tenants: {} };
      if (query.namespace === undefined) return stats;
      const prefix = `${query.namespace}/@`;
      return {
        ...stats,
        tenants: Object.fromEntries(
          Object.entries(stats.tenants).filter(([path]) => path.startsWith(prefix)),
        ),
      };
    },
  );
};
