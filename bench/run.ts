import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { TestRedisServer } from '../test/support/redis-server.js';
import { collectGarbage, medianRun, type RunResult, timedRun } from './harness.js';
import { createScenarios, KEY_COUNT, type LarderCounters, type Scenario, VALUE_BYTES } from './subjects.js';

const CONCURRENCIES = [1, 64] as const;
// BENCH_DURATION_MS shortens a run for a quick smoke test (the warm-up scales with it).
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 2000);
const WARMUP_MS = DURATION_MS / 4;
const REPEATS = 3;
const OUTPUT = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url));

type Row = { scenario: Scenario; subject: string; concurrency: number; result: RunResult };

/**
 * Measures each scenario at each concurrency. The repeats are interleaved (run 1 of every subject,
 * then run 2, ...) so that a noisy stretch of the shared machine does not land on one subject only.
 */
async function measure(scenarios: readonly Scenario[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const scenario of scenarios) {
    for (const concurrency of CONCURRENCIES) {
      const subjects = scenario.subjects.filter((s) => !s.sync || concurrency === 1);
      const runs = new Map<string, RunResult[]>(subjects.map((s) => [s.name, []]));
      for (let repeat = 1; repeat <= REPEATS; repeat++) {
        for (const subject of subjects) {
          const options = { concurrency, sync: subject.sync === true };
          await subject.prepare?.();
          await timedRun(subject.op, { ...options, durationMs: WARMUP_MS });
          collectGarbage();
          const result = await timedRun(subject.op, { ...options, durationMs: DURATION_MS });
          runs.get(subject.name)?.push(result);
          console.error(
            `${scenario.id} c=${concurrency} run ${repeat}/${REPEATS} ${subject.name}: ` +
              `${Math.round(result.opsPerSec)} ops/s, p50 ${fmtUs(result.p50Us)} µs, p99 ${fmtUs(result.p99Us)} µs`,
          );
        }
      }
      for (const [subject, results] of runs) {
        rows.push({ scenario, subject, concurrency, result: medianRun(results) });
      }
    }
  }
  return rows;
}

function fmtUs(us: number): string {
  return us < 10 ? us.toFixed(2) : us < 100 ? us.toFixed(1) : us.toFixed(0);
}

function fmtOps(opsPerSec: number): string {
  return Math.round(opsPerSec).toLocaleString('en-US');
}

function table(header: readonly string[], body: ReadonlyArray<readonly string[]>, rightFrom: number): string {
  const align = header.map((_, i) => (i >= rightFrom ? '---:' : '---'));
  return [header, align, ...body].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

function resultsTable(rows: readonly Row[]): string {
  return table(
    ['scenario', 'subject', 'concurrency', 'ops/s', 'p50 µs', 'p99 µs'],
    rows.map((r) => [
      r.scenario.title,
      r.subject,
      String(r.concurrency),
      fmtOps(r.result.opsPerSec),
      fmtUs(r.result.p50Us),
      fmtUs(r.result.p99Us),
    ]),
    2,
  );
}

function ratiosTable(rows: readonly Row[]): string {
  const find = (scenario: Scenario, subject: string, concurrency: number) =>
    rows.find((r) => r.scenario === scenario && r.subject === subject && r.concurrency === concurrency)
      ?.result;
  const body: string[][] = [];
  for (const scenario of new Set(rows.map((r) => r.scenario))) {
    for (const [larder, reference] of scenario.ratios) {
      for (const concurrency of CONCURRENCIES) {
        const a = find(scenario, larder, concurrency);
        const b = find(scenario, reference, concurrency);
        if (a === undefined || b === undefined) continue;
        body.push([
          scenario.title,
          `${larder} ÷ ${reference}`,
          String(concurrency),
          `${(a.opsPerSec / b.opsPerSec).toFixed(2)}×`,
          `${(a.p50Us / b.p50Us).toFixed(2)}×`,
          `${(a.p99Us / b.p99Us).toFixed(2)}×`,
        ]);
      }
    }
  }
  return table(['scenario', 'Larder ÷ reference', 'concurrency', 'ops/s', 'p50', 'p99'], body, 2);
}

function machine(): string[] {
  const cpus = os.cpus();
  const redis = execFileSync('redis-server', ['--version'], { encoding: 'utf8' });
  return [
    `- CPU: ${cpus[0]?.model ?? 'unknown'}, ${cpus.length} cores`,
    `- OS: ${os.type()} ${os.release()} (${os.arch()})`,
    `- Node.js: ${process.version}`,
    `- redis-server: ${/v=(\S+)/.exec(redis)?.[1] ?? redis.trim()} (private instance on loopback, started by the benchmark)`,
  ];
}

function markdown(
  rows: readonly Row[],
  info: { date: Date; seconds: number; load: string; notes: string[] },
) {
  return `# Benchmarks

Command: \`npm run bench\` (\`node --expose-gc --import tsx bench/run.ts\`)

Date: ${info.date.toISOString()}; total run time ${info.seconds.toFixed(0)} s.

## Machine

${machine().join('\n')}
- Load average (1, 5, 15 min) at start → end: ${info.load}

## Setup

- Values: one ${VALUE_BYTES}-byte JSON object. Larder stores it in its envelope; the raw clients store the bare JSON.
- Memory-tier and Redis-tier hits read ${KEY_COUNT.toLocaleString('en-US')} keys written beforehand, in a precomputed
  Zipf order (exponent 0.99, 2^20 indices, seeded).
- Miss + set uses a new key on every call and an instant loader; entries get a 5 s TTL (Larder \`ttl\`,
  raw \`PX\`) so that Redis expires them during the run.
- Redis commands per call: Larder's Redis-tier hit sends one MGET (the entry and its scope's version
  counter); its miss sends that MGET, then SET (2 commands, 2 round trips). The raw clients send GET
  (hit) or GET then SET (miss).
- Concurrency N: N async workers, each awaiting one call at a time in a loop. The synchronous lru-cache
  reference is a plain loop, measured at concurrency 1 only.
- Each row: ${WARMUP_MS} ms warm-up, then a ${DURATION_MS / 1000} s run, repeated ${REPEATS} times (repeats interleaved
  across subjects, full GC before each run); the row is the run with the median ops/s.
- Latency is per call, from an HdrHistogram in nanoseconds, shown in microseconds.
- Larder caches: \`createCache({ prefix: 'bench', redis: { url } })\`, the Redis-tier one with \`memory: false\`;
  raw clients with default options. node-redis 6 arms a 5 s per-command timeout by default (one
  \`AbortSignal.timeout()\` per command): the raw node-redis subject keeps it, Larder's driver turns it off
  because Larder bounds every call with its own timeout. ioredis does not auto-pipeline by default.

## Results

${resultsTable(rows)}

## Ratios

Larder's figure divided by the reference's, from the rows above. For ops/s, below 1× means Larder is
slower; for latencies, above 1× means Larder is slower.

${ratiosTable(rows)}

## Notes

- The machine is shared and noisy: other jobs run beside the benchmark, so the numbers move from run to
  run. Each row is the median of ${REPEATS} runs; compare ratios within one run rather than figures across runs.
${info.notes.map((n) => `- ${n}`).join('\n')}
`;
}

async function main(): Promise<void> {
  const startedAt = performance.now();
  const loadAtStart = os.loadavg();
  const emptyOp = await timedRun(() => undefined, { concurrency: 1, durationMs: 300, sync: true });
  const server = await TestRedisServer.start();
  let rows: Row[];
  let counters: LarderCounters;
  try {
    const bench = await createScenarios(server.url);
    try {
      rows = await measure(bench.scenarios);
      counters = bench.larderCounters();
    } finally {
      await bench.close();
    }
  } finally {
    await server.stop();
  }
  const seconds = (performance.now() - startedAt) / 1000;
  const load = (values: number[]) => values.map((v) => v.toFixed(2)).join(', ');
  const notes = [
    `Timing overhead: an empty synchronous call measures p50 ${fmtUs(emptyOp.p50Us)} µs with this harness ` +
      '(two `performance.now()` readings and a histogram record); it is included in every latency.',
    'At concurrency 64 a latency includes the time a call waits behind the other 63 workers: for memory hits ' +
      'the workers take turns on one thread, so p50 grows with concurrency while ops/s does not.',
    'At concurrency 64 with Zipf access, concurrent Larder getOrSet calls for the same hot key share one Redis ' +
      'read (single-flight); the raw clients send one GET per call. That is part of why Larder passes the raw ' +
      'clients there; at concurrency 1 there is nothing to share.',
    `Redis failures Larder absorbed during the run: ${counters.fallbacks} fallbacks, ${counters.timeouts} timeouts, ` +
      `${counters.redisErrors} errors; misses of the Redis-tier-hit cache: ${counters.redisTierMisses}` +
      `${counters.fallbacks + counters.timeouts + counters.redisErrors + counters.redisTierMisses > 0 ? ' (non-zero: these skew its rows)' : ' (all as expected)'}.`,
  ];
  console.log(resultsTable(rows));
  console.error(`\n${ratiosTable(rows)}`);
  writeFileSync(
    OUTPUT,
    markdown(rows, {
      date: new Date(),
      seconds,
      load: `${load(loadAtStart)} → ${load(os.loadavg())}`,
      notes,
    }),
  );
  console.error(`\nWrote ${OUTPUT} in ${seconds.toFixed(0)} s`);
}

await main();
