import type { FastifyPluginAsync } from 'fastify';
import type { ConversationService } from '../conversations/conversation-service.js';

/** Options of {@link conversationRoutes}. */
export type ConversationRoutesOptions = { service: ConversationService };

type ConversationQuery = { phone: string; org?: string };
type MessageBody = { phone: string; org?: string; role: unknown; content: unknown };
type SummaryBody = { phone: string; org?: string; summary: unknown };

// Loose bounds only, as on the leads routes: whether `phone` is a phone number is libphonenumber-js's
// call (E_INVALID_PHONE), and role, content, summary and limit are checked by the service, whose
// messages name the value and the limit.
const phone = { type: 'string', minLength: 1, maxLength: 64 } as const;
const org = { type: 'string', minLength: 1, maxLength: 128 } as const;

const contextSchema = {
  querystring: {
    type: 'object',
    required: ['phone'],
    properties: { phone, org, limit: { type: 'string', maxLength: 16 } },
  },
} as const;

const summaryQuerySchema = {
  querystring: { type: 'object', required: ['phone'], properties: { phone, org } },
} as const;

const messageSchema = {
  body: {
    type: 'object',
    required: ['phone', 'role', 'content'],
    properties: { phone, org, role: {}, content: {} },
  },
} as const;

const summaryBodySchema = {
  body: { type: 'object', required: ['phone', 'summary'], properties: { phone, org, summary: {} } },
} as const;

/**
 * Conversations, per organization and caller phone number. Routes only translate HTTP; the rules
 * live in {@link ConversationService}. `org` is resolved as on the leads routes (id or slug → the
 * organization reached on that number → the default organization).
 * - `POST /api/conversations/messages` `{ phone, org?, role, content }` → 201 the stored message
 * - `GET /api/conversations/context?phone=&org=&limit=` → the latest `limit` messages (default 20,
 *   at most 50), oldest first, with `X-Cache: HIT | MISS`
 * - `PUT /api/conversations/summary` `{ phone, org?, summary }` → the stored summary
 * - `GET /api/conversations/summary?phone=&org=` → the summary (`null` when none), with `X-Cache`
 */
export const conversationRoutes: FastifyPluginAsync<ConversationRoutesOptions> = async (app, { service }) => {
  app.post<{ Body: MessageBody }>(
    '/api/conversations/messages',
    { schema: messageSchema },
    async (request, reply) => {
      reply.code(201);
      return service.appendMessage(request.body);
    },
  );

  app.get<{ Querystring: ConversationQuery & { limit?: string } }>(
    '/api/conversations/context',
    { schema: contextSchema },
    async (request, reply) => {
      const { cache, ...context } = await service.getContext(request.query);
      reply.header('x-cache', cache === 'hit' ? 'HIT' : 'MISS');
      return context;
    },
  );

  app.put<{ Body: SummaryBody }>(
    '/api/conversations/summary',
    { schema: summaryBodySchema },
    async (request) => service.putSummary(request.body),
  );

  app.get<{ Querystring: ConversationQuery }>(
    '/api/conversations/summary',
    { schema: summaryQuerySchema },
    async (request, reply) => {
      const { cache, ...summary } = await service.getSummary(request.query);
      reply.header('x-cache', cache === 'hit' ? 'HIT' : 'MISS');
      return summary;
    },
  );
};
