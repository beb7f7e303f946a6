/**
 * Scenario 9: the reference service in its own process. Env: REDIS_URL, MAPPINGS. Listens on a free
 * loopback port, creates MAPPINGS company ↔ assistant mappings through its own POST route, reads each
 * once (warm), prints `{ port, slugs, assistantIds }`, then serves until stdin ends.
 */
import { buildApp } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';

const config = loadConfig({
  REDIS_URL: process.env.REDIS_URL,
  PORT: '0',
  HOST: '127.0.0.1',
  LARDER_ENV: 'bench',
});
const app = buildApp({ config, logger: false });
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
const port = typeof address === 'object' && address !== null ? address.port : 0;

const slugs: string[] = [];
const assistantIds: string[] = [];
for (let i = 0; i < Number(process.env.MAPPINGS ?? 100); i++) {
  const assistantId = `asst_${i.toString(36).padStart(6, '0')}`;
  const response = await app.inject({
    method: 'POST',
    url: '/api/company-assistants',
    payload: { companyName: `Bench Company ${i}`, assistantId, plan: 'pro', seats: i },
  });
  const { companySlug } = response.json<{ companySlug: string }>();
  slugs.push(companySlug);
  assistantIds.push(assistantId);
  await app.inject({ method: 'GET', url: `/api/company-assistant?slug=${companySlug}` });
  await app.inject({ method: 'GET', url: `/api/assistants/${assistantId}/company` });
}
process.stdout.write(`${JSON.stringify({ port, slugs, assistantIds })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void app.close().then(() => process.exit(0));
});
