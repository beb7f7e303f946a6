export { commandCalls, integerReply } from '../support/redis-replies.js';
import type { FastifyInstance } from 'fastify';
import type { Cache } from '../../src/index.js';
import { buildApp } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';

/** Apps built by a test file; its afterEach closes them. */
export const openedApps: FastifyInstance[] = [];

/** Builds an app from an environment (LARDER_ENV=test unless given) and records it for closing. */
export function appFromEnv(env: NodeJS.ProcessEnv, cache?: Cache): FastifyInstance {
  const app = buildApp({ config: loadConfig({ LARDER_ENV: 'test', ...env }), cache });
  openedApps.push(app);
  return app;
}

/** Closes every recorded app (and so the caches they created). */
export async function closeApps(): Promise<void> {
  await Promise.all(openedApps.splice(0).map((app) => app.close()));
}

/** Resolves once `GET /api/health` reports `status`, polling; throws after `timeoutMs`. */
export async function waitForHealth(
  app: FastifyInstance,
  status: 'ok' | 'degraded' = 'ok',
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const res = await app.inject({ method: 'GET', url: '/api/health' });
    if (res.json<{ status: string }>().status === status) return;
    last = res.body;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`health not ${status} within ${timeoutMs} ms; last: ${last}`);
}

/** Redis key of an entry of the mapping namespace, for LARDER_ENV=test. */
export function mappingKey(key: string): string {
  return `larder:test:1:d:company-assistants:${key.replace(':', '%3A')}`;
}

/** POST /api/company-assistants. */
export function postMapping(app: FastifyInstance, body: unknown) {
  return app.inject({ method: 'POST', url: '/api/company-assistants', payload: body as object });
}

/** GET /api/company-assistant?slug=. */
export function getBySlug(app: FastifyInstance, slug: string) {
  return app.inject({ method: 'GET', url: '/api/company-assistant', query: { slug } });
}

/** GET /api/assistants/:assistantId/company. */
export function getByAssistant(app: FastifyInstance, assistantId: string) {
  return app.inject({ method: 'GET', url: `/api/assistants/${encodeURIComponent(assistantId)}/company` });
}
