import { LRUCache } from 'lru-cache';
import { collectGarbage, medianRun, type Op, type RunResult, timedRun } from '../harness.js';
import { fmtInt, fmtRatio, fmtUs, type Section, table, type Verdict } from '../report.js';
import { type CacheSubject, createSubject, type SubjectId } from '../subjects.js';
import {
  inBatches,
  KEY_COUNT,
  keyReader,
  LONG_TTL_MS,
  makeValue,
  MISS_TTL_MS,
  SMALL_VALUE,
  zipfIndices,
} from '../workload.js';
import type { Context } from './context.js';

/** Scenarios 1-3: memory-tier hit, Redis-tier hit, miss + set; ops/s and per-call p50/p99. */

const CONCURRENCIES = [1, 64] as const;

type Measured = { name: string; op: Op; sync?: boolean; prepare?: () => Promise<void> };
type Row = { subject: string; concurrency: number; result: RunResult };
type Group = { scenario: 1 | 2 | 3; valueBytes: number; rows: Row[]; notes: string[] };

const TITLES = {
  1: 'Memory-tier hit: getOrSet on 10k warm keys, Zipf',
  2: 'Redis-tier hit: getOrSet with no memory tier, 10k keys, Zipf',
  3: 'Miss + set: getOrSet on distinct keys, instant loader',
} as const;

const SUBJECTS: Record<1 | 2 | 3, SubjectId[]> = {
  1: ['larder-hybrid', 'larder-memory', 'bento-hybrid', 'cacheable-hybrid', 'lru-awaited'],
  2: [
    'larder-redis',
    'larder-redis-io',
    'bento-redis',
    'cacheable-redis',
    'cache-manager',
    'ioredis',
    'node-redis',
  ],
  3: [
    'larder-hybrid',
    'larder-redis',
    'larder-redis-io',
    'bento-hybrid',
    'cacheable-hybrid',
    'cache-manager',
    'ioredis',
    'node-redis',
  ],
};

export async function runThroughput(
  ctx: Context,
  scenarios: Array<1 | 2 | 3>,
  sizes: number[],
): Promise<Section[]> {
  const groups: Group[] = [];
  for (const valueBytes of sizes) {
    for (const scenario of scenarios) {
      // The 10 KB pass is shorter: it shows the trend, the 200-byte pass carries the targets.
      const durationMs = valueBytes === SMALL_VALUE ? ctx.durationMs : ctx.durationMs / 2;
      groups.push(await runGroup(ctx, scenario, valueBytes, durationMs));
      await ctx.server.command('FLUSHALL');
    }
  }
  return scenarios.map((scenario) =>
    section(
      scenario,
      groups.filter((g) => g.scenario === scenario),
      ctx,
    ),
  );
}

async function runGroup(
  ctx: Context,
  scenario: 1 | 2 | 3,
  valueBytes: number,
  durationMs: number,
): Promise<Group> {
  const value = makeValue(valueBytes);
  const subjects = SUBJECTS[scenario].map((id) =>
    createSubject(id, {
      url: ctx.url,
      tag: `t${scenario}-${valueBytes}-${id}`,
      maxEntries: KEY_COUNT,
      maxBytes: 512 * 1024 * 1024,
    }),
  );
  const notes: string[] = [];
  try {
    await Promise.all(subjects.map((s) => s.ready()));
    const measured = await prepare(scenario, subjects, value, notes);
    const rows = await measure(ctx, `${scenario}/${valueBytes}B`, measured, durationMs);
    for (const s of subjects) {
      const totals = s.larder?.stats().totals;
      if (totals !== undefined && totals.fallbacks + totals.timeouts + totals.redisErrors > 0) {
        notes.push(
          `${s.name} absorbed Redis failures during the run: ${totals.fallbacks} fallbacks, ` +
            `${totals.timeouts} timeouts, ${totals.redisErrors} errors (they skew its rows).`,
        );
      }
    }
    if (unexpectedLoads.size > 0) {
      for (const [name, n] of unexpectedLoads)
        notes.push(`${name}: ${fmtInt(n)} unexpected loader calls (misses) during hit runs.`);
      unexpectedLoads.clear();
    }
    return { scenario, valueBytes, rows, notes };
  } finally {
    await Promise.all(subjects.map((s) => s.close()));
  }
}

/** Loader calls on a hit scenario are misses: counted and reported. */
const unexpectedLoads = new Map<string, number>();

async function prepare(
  scenario: 1 | 2 | 3,
  subjects: CacheSubject[],
  value: object,
  notes: string[],
): Promise<Measured[]> {
  const loader = () => value;
  const zipf = zipfIndices(KEY_COUNT, 1 << 20);
  const keys = Array.from({ length: KEY_COUNT }, (_, i) => `k${i}`);
  const warm = (s: CacheSubject) => inBatches(keys, 256, (key) => s.getOrSet(key, loader, LONG_TTL_MS));
  const hitLoader = (name: string) => () => {
    unexpectedLoads.set(name, (unexpectedLoads.get(name) ?? 0) + 1);
    return value;
  };
  if (scenario === 3) {
    return subjects.map((s) => {
      let n = 0;
      return { name: s.name, op: () => s.getOrSet(`x${n++}`, loader, MISS_TTL_MS) };
    });
  }
  const out: Measured[] = [];
  for (const s of subjects) {
    const next = keyReader(keys, zipf);
    const load = hitLoader(s.name);
    if (scenario === 2) await warm(s);
    out.push({
      name: s.name,
      op: () => s.getOrSet(next(), load, LONG_TTL_MS),
      // Memory entries may be capped (Larder: memory.maxTtl, 1 min): re-warm before each run.
      prepare: scenario === 1 ? () => warm(s) : undefined,
    });
  }
  if (scenario === 1) {
    const lru = new LRUCache<string, object>({ max: KEY_COUNT });
    for (const key of keys) lru.set(key, JSON.parse(JSON.stringify(value)) as object);
    const next = keyReader(keys, zipf);
    out.push({ name: 'lru-cache get, sync', op: () => lru.get(next()), sync: true });
    notes.push('`lru-cache get, sync` is a plain loop (no await), measured at concurrency 1 only.');
  }
  return out;
}

/** Repeats interleaved across subjects (run 1 of each, then run 2, ...); the row is the median run. */
async function measure(
  ctx: Context,
  label: string,
  subjects: Measured[],
  durationMs: number,
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const concurrency of CONCURRENCIES) {
    const active = subjects.filter((s) => !s.sync || concurrency === 1);
    const runs = new Map<string, RunResult[]>(active.map((s) => [s.name, []]));
    for (let repeat = 1; repeat <= ctx.repeats; repeat++) {
      for (const subject of active) {
        const options = { concurrency, sync: subject.sync === true };
        await subject.prepare?.();
        await timedRun(subject.op, { ...options, durationMs: durationMs / 4 });
        collectGarbage();
        const result = await timedRun(subject.op, { ...options, durationMs });
        runs.get(subject.name)?.push(result);
        ctx.log(
          `${label} c=${concurrency} run ${repeat}/${ctx.repeats} ${subject.name}: ${fmtInt(result.opsPerSec)} ops/s, ` +
            `p50 ${fmtUs(result.p50Us)} µs, p99 ${fmtUs(result.p99Us)} µs`,
        );
      }
    }
    for (const [subject, results] of runs) rows.push({ subject, concurrency, result: medianRun(results) });
  }
  return rows;
}

function section(scenario: 1 | 2 | 3, groups: Group[], ctx: Context): Section {
  const parts: string[] = [];
  for (const group of groups) {
    parts.push(
      `**${group.valueBytes === SMALL_VALUE ? '200-byte' : `${group.valueBytes / 1024} KB`} values**`,
    );
    const body = [...group.rows]
      .sort((a, b) => a.concurrency - b.concurrency)
      .map((r) => [
        r.subject,
        String(r.concurrency),
        fmtInt(r.result.opsPerSec),
        fmtUs(r.result.p50Us),
        fmtUs(r.result.p99Us),
      ]);
    parts.push(table(['subject', 'concurrency', 'ops/s', 'p50 µs', 'p99 µs'], body, 1));
    for (const note of group.notes) parts.push(`- ${note}`);
  }
  const small = groups.find((g) => g.valueBytes === SMALL_VALUE);
  if (small !== undefined) parts.push(...comparisons(scenario, small.rows).map((line) => `- ${line}`));
  const verdicts = small === undefined ? [] : targets(scenario, small.rows);
  void ctx;
  return { scenario, title: TITLES[scenario], markdown: parts.join('\n\n'), verdicts };
}

function ratio(rows: Row[], a: string, b: string, concurrency: number): number | undefined {
  const x = rows.find((r) => r.subject === a && r.concurrency === concurrency)?.result.opsPerSec;
  const y = rows.find((r) => r.subject === b && r.concurrency === concurrency)?.result.opsPerSec;
  return x === undefined || y === undefined ? undefined : x / y;
}

/** Ratios that explain the verdicts (200-byte values), one line per pair. */
function comparisons(scenario: 1 | 2 | 3, rows: Row[]): string[] {
  const line = (label: string, a: string, b: string) =>
    `${label} (${a} ÷ ${b}): ${CONCURRENCIES.map((c) => `${fmtRatio(ratio(rows, a, b, c))} at c=${c}`).join(', ')}.`;
  if (scenario === 1) {
    return [
      line('Memory hit vs the awaited lru-cache limit', 'Larder (memory+Redis)', 'lru-cache get, awaited'),
    ];
  }
  const across = [
    line('The two client libraries (no Larder)', 'raw node-redis GET/SET', 'raw ioredis GET/SET'),
    line('Across client libraries', 'Larder (Redis only)', 'raw ioredis GET/SET'),
  ];
  if (scenario === 2) {
    return [
      line('Same client library, default driver', 'Larder (Redis only)', 'raw node-redis GET/SET'),
      line(
        'Same client library, ioredis driver',
        'Larder (Redis only, ioredis driver)',
        'raw ioredis GET/SET',
      ),
      ...across,
    ];
  }
  return [
    line('Cost of the memory tier and the L1 bus on a miss', 'Larder (Redis only)', 'Larder (memory+Redis)'),
    line('Without them, vs the same client library', 'Larder (Redis only)', 'raw node-redis GET/SET'),
    line('Same client library, ioredis driver', 'Larder (Redis only, ioredis driver)', 'raw ioredis GET/SET'),
    ...across,
  ];
}

function targets(scenario: 1 | 2 | 3, rows: Row[]): Verdict[] {
  const v: Verdict[] = [];
  const check = (target: string, a: string, b: string, c: number, min: number) => {
    const r = ratio(rows, a, b, c);
    v.push({
      scenario,
      target: `${target} (c=${c})`,
      measured: `${fmtRatio(r)} (${a} ÷ ${b})`,
      met: r === undefined ? undefined : r >= min,
    });
  };
  for (const c of CONCURRENCIES) {
    if (scenario === 1) {
      check('≥ 2× BentoCache', 'Larder (memory+Redis)', 'BentoCache (memory+Redis)', c, 2);
      check('≥ 0.5× awaited lru-cache get', 'Larder (memory+Redis)', 'lru-cache get, awaited', c, 0.5);
    } else if (scenario === 2) {
      // "The raw client" is the client library Larder runs on: each driver against its own.
      const min = c === 1 ? 0.9 : 1.0;
      check(`≥ ${min.toFixed(1)}× its raw client`, 'Larder (Redis only)', 'raw node-redis GET/SET', c, min);
      check(
        `≥ ${min.toFixed(1)}× its raw client`,
        'Larder (Redis only, ioredis driver)',
        'raw ioredis GET/SET',
        c,
        min,
      );
    } else {
      check('≥ 0.8× its raw client', 'Larder (memory+Redis)', 'raw node-redis GET/SET', c, 0.8);
      check('≥ 0.8× its raw client', 'Larder (Redis only, ioredis driver)', 'raw ioredis GET/SET', c, 0.8);
    }
  }
  return v;
}
