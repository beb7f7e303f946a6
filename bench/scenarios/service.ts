import autocannon from 'autocannon';
import { Worker } from '../processes.js';
import { fmtInt, fmtMs, type Section, table } from '../report.js';
import type { Context } from './context.js';

/**
 * Scenario 9: autocannon against the reference service (`buildApp()`, Redis configured), warm
 * cache, one route at a time. The service runs in its own process so that autocannon does not
 * share its event loop.
 */

const CONNECTIONS = 32;
const MAPPINGS = 100;

type Routes = {
  port: number;
  slugs: string[];
  assistantIds: string[];
  leads: Array<{ phone: string; org: string }>;
  orgs: string[];
};

export async function runService(ctx: Context): Promise<Section> {
  const worker = new Worker('service-worker.ts', { REDIS_URL: ctx.url, MAPPINGS: String(MAPPINGS) });
  const rows: string[][] = [];
  try {
    const routes = await worker.next<Routes>(180_000);
    const seconds = Math.max(1, Math.round((ctx.durationMs * 2) / 1000));
    const targets: Array<[string, (i: number) => string]> = [
      [
        'GET /api/company-assistant?slug=…',
        (i) => `/api/company-assistant?slug=${routes.slugs[i % MAPPINGS]}`,
      ],
      [
        'GET /api/assistants/:assistantId/company',
        (i) => `/api/assistants/${routes.assistantIds[i % MAPPINGS]}/company`,
      ],
      [
        'GET /api/leads/lookup?phone=…&org=…',
        (i) => {
          const lead = routes.leads[i % routes.leads.length] as { phone: string; org: string };
          return `/api/leads/lookup?phone=${encodeURIComponent(lead.phone)}&org=${lead.org}`;
        },
      ],
      [
        'GET /api/kpis?org=… (HTTP response cache)',
        (i) => `/api/kpis?org=${routes.orgs[i % routes.orgs.length]}`,
      ],
    ];
    for (const [label, path] of targets) {
      await cannon(routes.port, path, 1); // warm-up: JIT, connections
      const result = await cannon(routes.port, path, seconds);
      const non2xx = result.non2xx + result.errors + result.timeouts;
      ctx.log(
        `9 ${label}: ${fmtInt(result.requests.average)} req/s, p99 ${result.latency.p99} ms, ${non2xx} failed`,
      );
      rows.push([
        label,
        fmtInt(result.requests.average),
        fmtMs(result.latency.p50),
        fmtMs(result.latency.p99),
        fmtMs(result.latency.max),
        fmtInt(non2xx),
      ]);
    }
  } finally {
    await worker.stop();
  }
  const markdown = [
    table(['route', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'non-2xx / errors'], rows),
    `- autocannon ${CONNECTIONS} connections, ${Math.max(1, Math.round((ctx.durationMs * 2) / 1000))} s per route after a 1 s warm-up, ` +
      `rotating over ${MAPPINGS} mappings created through the POST route, ${MAPPINGS} demo leads and every demo ` +
      'organization, each read once before. The service process and autocannon share the 2 cores; the service has Redis ' +
      'configured (memory tier in front), PGlite with the demo data, and rate limiting off (it would answer 429 past ' +
      '600 requests per minute from one IP).',
  ].join('\n\n');
  return {
    scenario: 9,
    title: 'The service: autocannon on the mapping, lead and KPI routes, warm cache',
    markdown,
    verdicts: [],
  };
}

function cannon(port: number, path: (i: number) => string, seconds: number): Promise<autocannon.Result> {
  let n = 0;
  return autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [{ method: 'GET', setupRequest: (request) => ({ ...request, path: path(n++) }) }],
  });
}
