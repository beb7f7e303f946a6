import type { FastifyPluginAsync } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { registerPrometheusMetrics } from '../../telemetry/prometheus.js';

// Process metrics (CPU, memory, event loop lag, GC) describe the process, not an app: collected
// once into a registry of their own, whatever the number of apps (tests build many).
let processRegistry: Registry | undefined;

function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * `GET /metrics`: Prometheus text exposition (`text/plain; version=0.0.4`): the cache's series
 * (`larder_*`, from `larder/prometheus`, read from `cache.stats()` at scrape time) and prom-client's
 * default process metrics. Neither is registered in prom-client's global registry, so an
 * application embedding the service keeps its own.
 */
export const metricsRoutes: FastifyPluginAsync = async (app) => {
  const registry = new Registry();
  const unregister = registerPrometheusMetrics(app.cache, { registry });
  app.addHook('onClose', async () => {
    unregister();
  });
  const process = processMetrics();

  app.get(
    '/metrics',
    { schema: { tags: ['operations'], summary: 'Prometheus metrics (text exposition 0.0.4)' } },
    async (_request, reply) => {
      const [cache, runtime] = await Promise.all([registry.metrics(), process.metrics()]);
      reply.type(registry.contentType);
      return `${cache}\n${runtime}`;
    },
  );
};
