/**
 * Scenario 9: the reference service in its own process. Env: REDIS_URL, MAPPINGS. Listens on a free
 * loopback port with PGlite and the demo data in a temporary folder and rate limiting off (the
 * bench measures the cache path, not the limiter's 429s), creates MAPPINGS company ↔ assistant
 * mappings through its own POST route, reads each once and looks up MAPPINGS demo leads and the
 * KPIs of every organization once (warm), prints `{ port, slugs, assistantIds, leads, orgs }`,
 * then serves until stdin ends.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as ServerApp from '../../src/server/app.js';
import type * as ServerConfig from '../../src/server/config.js';
import { fromDist } from '../larder.js';

// The compiled service, as `npm start` runs it (see bench/larder.ts).
const { buildApp } = await fromDist<typeof ServerApp>('server/app.js');
const { loadConfig } = await fromDist<typeof ServerConfig>('server/config.js');
const dataDir = mkdtempSync(join(tmpdir(), 'larder-bench-service-'));
const config = loadConfig({
  REDIS_URL: process.env.REDIS_URL,
  PORT: '0',
  HOST: '127.0.0.1',
  LARDER_ENV: 'bench',
  DATA_DIR: dataDir,
  SEED_DEMO_DATA: 'true',
  RATE_LIMIT_ENABLED: 'false',
  LARDER_ADMIN_TOKEN: 'bench-admin-token-0123456789',
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
const { rows: leads } = await app.db.query<{ phone: string; org: string }>(
  'SELECT phone, organization_id AS org FROM leads ORDER BY id LIMIT $1',
  [Number(process.env.MAPPINGS ?? 100)],
);
const { rows: orgs } = await app.db.query<{ id: string }>('SELECT id FROM organizations ORDER BY id');
for (const lead of leads) {
  await app.inject({ method: 'GET', url: '/api/leads/lookup', query: { phone: lead.phone, org: lead.org } });
}
for (const org of orgs) await app.inject({ method: 'GET', url: '/api/kpis', query: { org: org.id } });
process.stdout.write(
  `${JSON.stringify({ port, slugs, assistantIds, leads, orgs: orgs.map((o) => o.id) })}\n`,
);
process.stdin.resume();
process.stdin.on('end', () => {
  void app.close().then(() => {
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(0);
  });
});
