import type { FastifyPluginAsync } from 'fastify';
import {
  type CreatePrototypeInput,
  PROTOTYPE_FIELD_MAX_LENGTH,
  type PrototypeService,
} from '../prototypes/prototype-service.js';

/** Options of {@link prototypeRoutes}. */
export type PrototypeRoutesOptions = { service: PrototypeService };

// `\S`: at least one non-space character, so the trimmed value is not empty.
const text = { type: 'string', minLength: 1, maxLength: PROTOTYPE_FIELD_MAX_LENGTH, pattern: '\\S' } as const;

const createSchema = {
  body: {
    type: 'object',
    required: ['companyName', 'location'],
    additionalProperties: false,
    properties: { companyName: text, location: text },
  },
} as const;

/**
 * Prototypes. Routes only translate HTTP; the rules live in {@link PrototypeService}.
 * - `POST /api/prototypes` `{ companyName, location }` → 201
 *   `{ companySlug, demoUrl, assistant, company }`, `Location: /api/company-assistant?slug=<slug>`
 */
export const prototypeRoutes: FastifyPluginAsync<PrototypeRoutesOptions> = async (app, { service }) => {
  app.post<{ Body: CreatePrototypeInput }>(
    '/api/prototypes',
    { schema: createSchema },
    async (request, reply) => {
      const prototype = await service.createPrototype(request.body);
      reply.code(201).header('location', `/api/company-assistant?slug=${prototype.companySlug}`);
      return prototype;
    },
  );
};
