import type { FastifyPluginAsync } from 'fastify';
import { ASSISTANT_ID_PATTERN, type MappingStore } from '../company-assistants/mapping-store.js';
import { SLUG_MAX_LENGTH, SLUG_PATTERN } from '../company-assistants/slug.js';
import { ServiceError, ServiceErrorCode } from '../errors.js';

/** Longest `ttlSeconds` accepted: 365 days. */
export const MAX_TTL_SECONDS = 365 * 24 * 60 * 60;

export { MAPPING_NAMESPACE } from '../company-assistants/mapping-store.js';

/** Options of {@link companyAssistantRoutes}. */
export type CompanyAssistantRoutesOptions = {
  /** The store shared with the prototype routes, so that all mapping writes go through one queue. */
  store: MappingStore;
};

type CreateBody = {
  companyName: string;
  assistantId: string;
  ttlSeconds?: number;
  [field: string]: unknown;
};

const assistantId = { type: 'string', pattern: ASSISTANT_ID_PATTERN.source } as const;

const createSchema = {
  body: {
    type: 'object',
    required: ['companyName', 'assistantId'],
    properties: {
      // `\S`: at least one non-space character, so the trimmed name is not empty.
      companyName: { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' },
      assistantId,
      ttlSeconds: { type: 'integer', minimum: 1, maximum: MAX_TTL_SECONDS },
    },
  },
} as const;

const bySlugSchema = {
  querystring: {
    type: 'object',
    required: ['slug'],
    properties: { slug: { type: 'string', maxLength: SLUG_MAX_LENGTH, pattern: SLUG_PATTERN.source } },
  },
} as const;

const byAssistantSchema = {
  params: { type: 'object', required: ['assistantId'], properties: { assistantId } },
} as const;

/**
 * Company ↔ assistant mappings. Routes only translate HTTP; the rules live in {@link MappingStore}.
 * - `POST /api/company-assistants` → 201 `{ companySlug, assistantId, demoUrl }` (Postgres, then
 *   both cache directions)
 * - `GET /api/company-assistant?slug=` → the mapping (cache, else Postgres)
 * - `GET /api/assistants/:assistantId/company` → `{ companySlug, assistantId, companyName }`
 */
export const companyAssistantRoutes: FastifyPluginAsync<CompanyAssistantRoutesOptions> = async (
  app,
  { store },
) => {
  app.post<{ Body: CreateBody }>(
    '/api/company-assistants',
    { schema: createSchema },
    async (request, reply) => {
      const { companyName, assistantId, ttlSeconds, ...data } = request.body;
      const mapping = await store.save({ companyName, assistantId, ttlSeconds, data });
      const slug = mapping.companySlug;
      reply.code(201).header('location', `/api/company-assistant?slug=${slug}`);
      return { companySlug: slug, assistantId: mapping.assistantId, demoUrl: `/demo/${slug}` };
    },
  );

  app.get<{ Querystring: { slug: string } }>(
    '/api/company-assistant',
    { schema: bySlugSchema },
    async (request) => {
      const mapping = await store.findBySlug(request.query.slug);
      if (mapping === undefined) {
        throw new ServiceError(
          ServiceErrorCode.NotFound,
          `No company assistant under slug ${request.query.slug}`,
        );
      }
      return mapping;
    },
  );

  app.get<{ Params: { assistantId: string } }>(
    '/api/assistants/:assistantId/company',
    { schema: byAssistantSchema },
    async (request) => {
      const mapping = await store.findByAssistant(request.params.assistantId);
      if (mapping === undefined) {
        throw new ServiceError(
          ServiceErrorCode.NotFound,
          `No company is mapped to assistant ${request.params.assistantId}`,
        );
      }
      return {
        companySlug: mapping.companySlug,
        assistantId: mapping.assistantId,
        companyName: mapping.companyName,
      };
    },
  );
};
