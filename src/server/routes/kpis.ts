import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Duration } from '../../index.js';
import type { HttpCache } from '../http-cache/http-cache.js';
import { kpiTag, type KpiService } from '../kpis/kpi-service.js';

/** How long a KPI or dashboard response is served from the HTTP cache (lead changes invalidate it sooner). */
export const KPI_HTTP_TTL: Duration = '1m';

/** Options of {@link kpiRoutes}. */
export type KpiRoutesOptions = { service: KpiService; httpCache: HttpCache };

type OrgQuery = { org: string };

// Loose bounds only: whether `org` is an id or a slug is the service's call (a clear E_VALIDATION).
const orgQuery = {
  type: 'object',
  required: ['org'],
  properties: { org: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;

const kpisSchema = { querystring: orgQuery } as const;
const dashboardSchema = {
  querystring: orgQuery,
  params: {
    type: 'object',
    required: ['role'],
    properties: { role: { type: 'string', minLength: 1, maxLength: 64 } },
  },
} as const;

/**
 * KPIs and dashboards. Routes only translate HTTP; the rules live in {@link KpiService}.
 * - `GET /api/kpis?org=<id or slug>` → `{ organization, kpis, computedAt }`
 * - `GET /api/dashboards/:role?org=` → `{ role, organization, computedAt, sections }`
 *
 * Both answer through the HTTP response cache (`X-Cache: HIT | MISS`), in the organization's tenant,
 * tagged `kpis:<orgId>` like the KPI entries, so a lead change invalidates both.
 */
export const kpiRoutes: FastifyPluginAsync<KpiRoutesOptions> = async (app, { service, httpCache }) => {
  // Resolving the organization first gives the cached response its tenant and tag, and answers an
  // unknown or malformed org (404/400) before the cache is read.
  const cached = httpCache.route({
    ttl: KPI_HTTP_TTL,
    vary: async (request: FastifyRequest) => {
      const { id } = await service.organization((request.query as OrgQuery).org);
      return { tenant: id, tags: [kpiTag(id)] };
    },
  });

  app.get<{ Querystring: OrgQuery }>('/api/kpis', { schema: kpisSchema, ...cached }, async (request) =>
    service.report(request.query.org),
  );

  app.get<{ Querystring: OrgQuery; Params: { role: string } }>(
    '/api/dashboards/:role',
    { schema: dashboardSchema, ...cached },
    async (request) => service.dashboard(request.params.role, request.query.org),
  );
};
