import type { FastifyPluginAsync } from 'fastify';
import { UUID_PATTERN } from '../leads/lead.js';
import type { LeadService } from '../leads/lead-service.js';

/** Options of {@link leadRoutes}. */
export type LeadRoutesOptions = { service: LeadService };

type LookupQuery = { phone: string; org?: string };

const lookupSchema = {
  querystring: {
    type: 'object',
    required: ['phone'],
    properties: {
      // Loose bounds only: whether it is a phone number is libphonenumber-js's call (E_INVALID_PHONE).
      phone: { type: 'string', minLength: 1, maxLength: 64 },
      org: { type: 'string', minLength: 1, maxLength: 128 },
    },
  },
} as const;

const patchSchema = {
  params: {
    type: 'object',
    required: ['id'],
    properties: { id: { type: 'string', pattern: UUID_PATTERN.source } },
  },
} as const;

/**
 * Leads. Routes only translate HTTP; the rules live in {@link LeadService}.
 * - `GET /api/leads/lookup?phone=&org=` → `{ lead, organization, organizationMatch }`, with
 *   `X-Cache: HIT` when the lead came from the cache, `MISS` when Postgres was queried for it
 * - `PATCH /api/leads/:id` `{ status?, classification?, name? }` → the updated lead
 */
export const leadRoutes: FastifyPluginAsync<LeadRoutesOptions> = async (app, { service }) => {
  app.get<{ Querystring: LookupQuery }>(
    '/api/leads/lookup',
    { schema: lookupSchema },
    async (request, reply) => {
      const { cache, ...found } = await service.lookupLead(request.query);
      reply.header('x-cache', cache === 'hit' ? 'HIT' : 'MISS');
      return found;
    },
  );

  // The body is validated by the service (parseLeadChanges), the one place that knows the rules.
  app.patch<{ Params: { id: string }; Body: unknown }>(
    '/api/leads/:id',
    { schema: patchSchema },
    async (request) => service.updateLead(request.params.id, request.body),
  );
};
