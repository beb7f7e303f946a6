import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';

// The same path from src/server and dist/server.
const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/**
 * Registers OpenAPI generation (`@fastify/swagger`, from the routes' JSON schemas) and its UI
 * (`@fastify/swagger-ui`) at `/docs`, with the document at `/docs/json` (and `/docs/yaml`). Must be
 * called before the routes are registered: the generator records routes as they are added.
 */
export function registerOpenApi(app: FastifyInstance): void {
  app.register(fastifySwagger, {
    // Routes keep their schemas; a tag is added where a route has none, so the UI groups them.
    transform: ({ schema, url }) => ({
      schema: { ...schema, tags: (schema as { tags?: string[] } | undefined)?.tags ?? [tagOf(url)] },
      url,
    }),
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Larder reference service',
        description:
          'The use cases Larder is built for, run on its public API. Errors are `{ error: { code, message } }`; bad input is a 400 naming the value.',
        version,
      },
      tags: [
        { name: 'operations', description: 'Health, cache statistics, metrics' },
        { name: 'session', description: 'Dashboard login (admin token → session cookie)' },
        {
          name: 'admin',
          description: 'Needs `Authorization: Bearer <LARDER_ADMIN_TOKEN>` or an admin session',
        },
      ],
      components: {
        securitySchemes: {
          adminToken: { type: 'http', scheme: 'bearer', description: 'LARDER_ADMIN_TOKEN' },
        },
      },
    },
  });
  app.register(fastifySwaggerUi, { routePrefix: '/docs' });
}

/** Operations routes (health, stats, metrics) share a tag; others are tagged by their first segment. */
const OPERATIONS = /^\/(?:api\/health|api\/cache|metrics)(?:\/|$)/;

/**
 * The OpenAPI tag of a route that does not name one: `/api/leads/lookup` → `leads`,
 * `/api/assistants/:id/company` → `company-assistants`. Exported for tests.
 */
export function tagOf(url: string): string {
  if (OPERATIONS.test(url)) return 'operations';
  const segment = /^\/(?:api\/)?([^/]+)/.exec(url)?.[1] ?? 'other';
  return segment === 'assistants' || segment === 'company-assistant' ? 'company-assistants' : segment;
}
