/**
 * `npm run bench`: every scenario of issue 5 against one private redis-server (scenarios that kill
 * or pause Redis start their own), then BENCHMARKS.md.
 *
 * BENCH_ONLY=1,4,5      run a subset (written to a temporary file, not BENCHMARKS.md)
 * BENCH_DURATION_MS=200 shorter runs for a smoke test (also written to a temporary file)
 * BENCH_LARGE=0         skip the 10 KB pass of scenarios 1-3
 */
import { writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { timedRun } from './harness.js';
import { markdown } from './markdown.js';
import {
  installCleanup,
  installStrayErrorCounter,
  killEverything,
  leftoverStrayErrors,
  startRedis,
  stopRedis,
} from './processes.js';
import { fmtUs, type Section } from './report.js';
import { runBatch } from './scenarios/batch.js';
import type { Context } from './scenarios/context.js';
import { runHeap } from './scenarios/heap.js';
import { runOutage } from './scenarios/outage.js';
import { runRestart } from './scenarios/restart.js';
import { runService } from './scenarios/service.js';
import { runStampede } from './scenarios/stampede.js';
import { runThroughput } from './scenarios/throughput.js';
import { LARGE_VALUE, SMALL_VALUE } from './workload.js';

const DEFAULT_DURATION_MS = 1000;
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? DEFAULT_DURATION_MS);
const ONLY = (process.env.BENCH_ONLY ?? '')
  .split(',')
  .map((s) => Number(s.trim()))
  .filter((n) => Number.isInteger(n) && n >= 1 && n <= 9);
const SELECTED = new Set(ONLY.length > 0 ? ONLY : [1, 2, 3, 4, 5, 6, 7, 8, 9]);
const LARGE = process.env.BENCH_LARGE !== '0';
const FULL = ONLY.length === 0 && DURATION_MS === DEFAULT_DURATION_MS && LARGE;
const OUTPUT = FULL
  ? fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url))
  : join(os.tmpdir(), 'larder-BENCHMARKS.partial.md');
const DEADLINE_MS = 15 * 60_000;

async function main(): Promise<void> {
  installCleanup(DEADLINE_MS);
  installStrayErrorCounter();
  const startedAt = performance.now();
  const loadAtStart = os.loadavg();
  const emptyOp = await timedRun(() => undefined, { concurrency: 1, durationMs: 300, sync: true });
  const server = await startRedis();
  const ctx: Context = {
    server,
    url: server.url,
    durationMs: DURATION_MS,
    repeats: 3,
    log: (line) =>
      console.error(`[${((performance.now() - startedAt) / 1000).toFixed(0).padStart(3)} s] ${line}`),
  };
  const sections: Section[] = [];
  const attempt = async (ids: number[], title: string, run: () => Promise<Section | Section[]>) => {
    if (!ids.some((id) => SELECTED.has(id))) return;
    try {
      const out = await run();
      sections.push(...(Array.isArray(out) ? out : [out]));
    } catch (error) {
      console.error(`scenario ${ids.join(',')} failed:`, error);
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      for (const id of ids.filter((i) => SELECTED.has(i))) {
        sections.push({
          scenario: id,
          title,
          markdown: `FAILED:\n\n\`\`\`\n${message}\n\`\`\``,
          verdicts: [],
        });
      }
    }
  };
  try {
    const throughput = ([1, 2, 3] as const).filter((id) => SELECTED.has(id));
    const sizes = LARGE ? [SMALL_VALUE, LARGE_VALUE] : [SMALL_VALUE];
    await attempt([...throughput], 'Throughput', () => runThroughput(ctx, [...throughput], sizes));
    await attempt([4], 'Stampede', () => runStampede(ctx));
    await attempt([5], 'Redis down and paused', () => runOutage(ctx));
    await attempt([6], 'Redis killed and restarted', () => runRestart(ctx));
    await attempt([7], 'Batches', () => runBatch(ctx));
    await attempt([8], 'Heap per entry', () => runHeap(ctx));
    await attempt([9], 'The service', () => runService(ctx));
  } finally {
    await stopRedis(server);
  }
  const seconds = (performance.now() - startedAt) / 1000;
  const load = (values: number[]) => values.map((v) => v.toFixed(2)).join(', ');
  const text = markdown(sections, {
    date: new Date(),
    seconds,
    load: `${load(loadAtStart)} → ${load(os.loadavg())}`,
    durationMs: DURATION_MS,
    repeats: ctx.repeats,
    partial: FULL
      ? undefined
      : `BENCH_ONLY=${[...SELECTED].join(',')} BENCH_DURATION_MS=${DURATION_MS} BENCH_LARGE=${LARGE ? 1 : 0}`,
    timingOverhead: `${fmtUs(emptyOp.p50Us)} µs`,
    leftovers: leftoverStrayErrors(),
  });
  writeFileSync(OUTPUT, text);
  console.error(`\nWrote ${OUTPUT} in ${seconds.toFixed(0)} s`);
}

let exitCode = 0;
try {
  await main();
} catch (error) {
  console.error(error);
  exitCode = 1;
} finally {
  killEverything();
}
// Peers may keep reconnect timers alive (a Redis that never came back): exit explicitly.
process.exit(exitCode);
