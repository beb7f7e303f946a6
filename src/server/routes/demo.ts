import type { FastifyPluginAsync } from 'fastify';
import type { MappingStore } from '../company-assistants/mapping-store.js';
import { SLUG_MAX_LENGTH, SLUG_PATTERN } from '../company-assistants/slug.js';

/** Options of {@link demoRoutes}. */
export type DemoRoutesOptions = { store: MappingStore };

/** Escapes text for HTML element content and attribute values. */
function html(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${html(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1f2328}
code{background:#f3f4f6;padding:.1rem .3rem;border-radius:4px}.muted{color:#6b7280}</style></head>
<body>${body}</body></html>`;
}

/**
 * `GET /demo/:slug`: the demo page a prototype's URL points at. Every page load looks the company
 * up by slug through the mapping store (memory tier, then Redis, then Postgres), which is the load
 * pattern the mappings exist for. Unknown or malformed slugs get a 404 page.
 */
export const demoRoutes: FastifyPluginAsync<DemoRoutesOptions> = async (app, { store }) => {
  app.get<{ Params: { slug: string } }>('/demo/:slug', { schema: { hide: true } }, async (request, reply) => {
    const { slug } = request.params;
    reply.type('text/html; charset=utf-8');
    const mapping =
      slug.length <= SLUG_MAX_LENGTH && SLUG_PATTERN.test(slug) ? await store.findBySlug(slug) : undefined;
    if (mapping === undefined) {
      reply.code(404);
      return page(
        'No such demo',
        `<h1>No demo here</h1><p class="muted">Nothing is published under <code>${html(slug)}</code>. Create one with <code>POST /api/prototypes</code>.</p>`,
      );
    }
    const location = typeof mapping.location === 'string' ? ` · ${html(mapping.location)}` : '';
    return page(
      `${mapping.companyName} — demo assistant`,
      `<h1>${html(mapping.companyName)}</h1>
<p class="muted">Demo assistant${location}</p>
<p>Assistant <code>${html(mapping.assistantId)}</code>, published ${html(mapping.createdAt)}.</p>
<p class="muted">Served by the Larder reference service: this page reads the mapping through the cache on every load.</p>`,
    );
  });
};
