import type { FastifyPluginAsync } from 'fastify';

/** `GET /api/cache/stats`: Larder's counters, tier sizes and circuit state. No I/O. */
export const cacheStatsRoutes: FastifyPluginAsync = async (app) => {
  app.get('/api/cache/stats', async () => app.cache.stats());
};
