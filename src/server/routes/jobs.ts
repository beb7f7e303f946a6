import type { FastifyPluginAsync } from 'fastify';
import type { JobRunner } from '../jobs/job-runner.js';
import type { KpiService } from '../kpis/kpi-service.js';
import { UUID_PATTERN } from '../leads/lead.js';

/** Options of {@link jobRoutes}. */
export type JobRoutesOptions = { runner: JobRunner; kpis: KpiService };

const classifySchema = {
  body: {
    type: 'object',
    required: ['leadId'],
    properties: { leadId: { type: 'string', pattern: UUID_PATTERN.source } },
  },
} as const;

const kpisSchema = {
  body: {
    type: 'object',
    required: ['org'],
    properties: { org: { type: 'string', minLength: 1, maxLength: 128 } },
  },
} as const;

const deadLettersSchema = {
  querystring: {
    type: 'object',
    properties: { limit: { type: 'string', pattern: '^(?:[1-9]\\d{0,2}|1000)$' } },
  },
} as const;

const retrySchema = {
  params: {
    type: 'object',
    required: ['id'],
    properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' } },
  },
} as const;

/**
 * Background jobs. Routes only translate HTTP; the rules live in the {@link JobRunner}.
 * - `GET /api/jobs` → `{ mode, queues: [{ name, waiting, active, delayed, failed, completed }], deadLetters: { count }, available, reason? }`
 * - `POST /api/jobs/classify` `{ leadId }` and `POST /api/jobs/kpis` `{ org }` → 202 `{ id, queue, mode }`
 * - `GET /api/jobs/dead-letters?limit=` → `{ count, deadLetters }`
 * - `POST /api/jobs/dead-letters/:id/retry` (admin) → 202 `{ id, queue, mode }`
 */
export const jobRoutes: FastifyPluginAsync<JobRoutesOptions> = async (app, { runner, kpis }) => {
  app.get('/api/jobs', async () => runner.overview());

  app.post<{ Body: { leadId: string } }>(
    '/api/jobs/classify',
    { schema: classifySchema },
    async (request, reply) => {
      reply.code(202);
      return runner.enqueue('lead-classification', { leadId: request.body.leadId.toLowerCase() });
    },
  );

  app.post<{ Body: { org: string } }>('/api/jobs/kpis', { schema: kpisSchema }, async (request, reply) => {
    // An unknown or malformed org is answered now (404/400), not as a job failing later.
    const organization = await kpis.organization(request.body.org);
    reply.code(202);
    return runner.enqueue('kpi-recompute', { organizationId: organization.id });
  });

  app.get<{ Querystring: { limit?: string } }>(
    '/api/jobs/dead-letters',
    { schema: deadLettersSchema },
    async (request) => runner.deadLetters(Number(request.query.limit ?? 100)),
  );

  app.post<{ Params: { id: string } }>(
    '/api/jobs/dead-letters/:id/retry',
    { schema: retrySchema, preHandler: app.requireAdmin },
    async (request, reply) => {
      reply.code(202);
      return runner.retryDeadLetter(request.params.id);
    },
  );
};
