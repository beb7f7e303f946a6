import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { FastifyPluginAsync } from 'fastify';

/** A file the dashboard serves, read once when the app starts. */
type Asset = { type: string; body: Buffer };

// `src/server/dashboard/public` when run from the sources, `dist/server/dashboard/public` after
// `npm run build` (which copies it there).
const PUBLIC_DIR = new URL('../dashboard/public/', import.meta.url);

const PAGES: ReadonlyArray<readonly [route: string, file: string, type: string]> = [
  ['/', 'index.html', 'text/html; charset=utf-8'],
  ['/dashboard/dashboard.js', 'dashboard.js', 'text/javascript; charset=utf-8'],
  ['/dashboard/dashboard.css', 'dashboard.css', 'text/css; charset=utf-8'],
];

const VENDOR: ReadonlyArray<readonly [route: string, module: string, type: string]> = [
  ['/dashboard/vendor/uPlot.iife.min.js', 'uplot/dist/uPlot.iife.min.js', 'text/javascript; charset=utf-8'],
  ['/dashboard/vendor/uPlot.min.css', 'uplot/dist/uPlot.min.css', 'text/css; charset=utf-8'],
];

const hidden = { schema: { hide: true } } as const;

/**
 * The dashboard: `GET /` serves a static page (`src/server/dashboard/public`) that polls
 * `/api/cache/stats`, `/api/health` and `/api/jobs` and draws them with uPlot, served from
 * `node_modules/uplot` under `/dashboard/vendor/`. Without uplot installed the page still shows its
 * numbers, without charts.
 */
export const dashboardRoutes: FastifyPluginAsync = async (app) => {
  const assets = new Map<string, Asset>();
  for (const [route, file, type] of PAGES) {
    assets.set(route, { type, body: await readFile(new URL(file, PUBLIC_DIR)) });
  }
  const require = createRequire(import.meta.url);
  for (const [route, module, type] of VENDOR) {
    try {
      assets.set(route, { type, body: await readFile(require.resolve(module)) });
    } catch (error) {
      app.log.warn({ err: error, module }, 'dashboard: uplot is not installed; the page shows no charts');
    }
  }

  for (const [route, asset] of assets) {
    app.get(route, hidden, async (_request, reply) => {
      reply.type(asset.type).header('cache-control', 'no-cache');
      return asset.body;
    });
  }
};
