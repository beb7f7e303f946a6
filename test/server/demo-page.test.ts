import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runMigrations } from '../../src/server/db/migrate.js';
import { useRedisSuite } from '../support/suite.js';
import { appFromEnv, closeApps, sharedDatabase } from './helpers.js';

const suite = useRedisSuite();
afterEach(closeApps);

beforeEach(async () => {
  const db = sharedDatabase();
  await runMigrations(db);
  await db.exec('TRUNCATE company_assistants, assistants, companies');
});

describe('GET /demo/:slug', () => {
  it('shows the prototype a POST /api/prototypes published, escaping what the company typed', async () => {
    const app = appFromEnv({ REDIS_URL: suite.server.url });
    const created = await app.inject({
      method: 'POST',
      url: '/api/prototypes',
      payload: { companyName: 'Acme <script>alert(1)</script>', location: 'Paris & Lyon' },
    });
    expect(created.statusCode).toBe(201);
    const { companySlug, demoUrl } = created.json<{ companySlug: string; demoUrl: string }>();
    expect(demoUrl.endsWith(`/demo/${companySlug}`)).toBe(true);

    const res = await app.inject({ method: 'GET', url: `/demo/${companySlug}` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain('Acme &#60;script&#62;alert(1)&#60;/script&#62;');
    expect(res.body).not.toContain('<script>');
    expect(res.body).toContain('Paris &#38; Lyon');
  });

  it('answers 404 pages for unknown and malformed slugs, and keeps serving with Redis killed', async () => {
    const app = appFromEnv({ REDIS_URL: suite.server.url });
    for (const slug of ['nobody-here', 'NOT%20A%20SLUG', 'x'.repeat(300)]) {
      const res = await app.inject({ method: 'GET', url: `/demo/${slug}` });
      expect(res.statusCode, slug).toBe(404);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
    }
    const created = await app.inject({
      method: 'POST',
      url: '/api/prototypes',
      payload: { companyName: 'Kept Co', location: 'Oslo' },
    });
    const { companySlug } = created.json<{ companySlug: string }>();
    await suite.server.kill();
    const res = await app.inject({ method: 'GET', url: `/demo/${companySlug}` });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Kept Co');
  });
});
