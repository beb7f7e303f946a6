import { collectGarbage, medianRun, type RunResult, timedRun } from '../harness.js';
import { fmtInt, fmtRatio, fmtUs, type Section, table, type Verdict } from '../report.js';
import { type CacheSubject, createSubject, type SubjectId } from '../subjects.js';
import { inBatches, LONG_TTL_MS, makeValue, MISS_TTL_MS, SMALL_VALUE } from '../workload.js';
import type { Context } from './context.js';

/**
 * Scenario 7: 100 keys through one batch call (getOrSetMany, or the peer's batch get + batch set)
 * vs 100 sequential getOrSet. Redis-tier subjects (no memory tier), so every key goes to Redis;
 * concurrency 1. Two cases: all 100 keys in Redis (hits), and 100 new keys (misses, instant loader).
 */

const BATCH = 100;
const HIT_KEYS = 1000;
const SUBJECT_IDS: SubjectId[] = [
  'larder-redis',
  'bento-redis',
  'cacheable-redis',
  'cache-manager',
  'ioredis',
];

type Row = { name: string; kase: 'hit' | 'miss'; batch?: RunResult; sequential: RunResult };

export async function runBatch(ctx: Context): Promise<Section> {
  const value = makeValue(SMALL_VALUE);
  const loader = () => value;
  const batchLoader = (keys: string[]) => keys.map(() => value);
  const subjects = SUBJECT_IDS.map((id) => createSubject(id, { url: ctx.url, tag: `s7-${id}` }));
  const hitKeys = Array.from({ length: HIT_KEYS }, (_, i) => `h${i}`);
  const rows: Row[] = [];
  try {
    await Promise.all(subjects.map((s) => s.ready()));
    for (const s of subjects) await inBatches(hitKeys, 100, (k) => s.getOrSet(k, loader, LONG_TTL_MS));
    for (const kase of ['hit', 'miss'] as const) {
      const runs = new Map<CacheSubject, { batch: RunResult[]; sequential: RunResult[] }>(
        subjects.map((s) => [s, { batch: [], sequential: [] }]),
      );
      for (let repeat = 0; repeat < ctx.repeats; repeat++) {
        for (const s of subjects) {
          const entry = runs.get(s) as { batch: RunResult[]; sequential: RunResult[] };
          const keys = keySource(kase, hitKeys);
          const sequential = async () => {
            for (const key of keys())
              await s.getOrSet(key, loader, kase === 'hit' ? LONG_TTL_MS : MISS_TTL_MS);
          };
          entry.sequential.push(await measureOne(sequential, ctx.durationMs));
          const many = s.getOrSetMany;
          if (many !== undefined) {
            entry.batch.push(
              await measureOne(
                () => many(keys(), batchLoader, kase === 'hit' ? LONG_TTL_MS : MISS_TTL_MS),
                ctx.durationMs,
              ),
            );
          }
        }
      }
      for (const [s, r] of runs) {
        const row: Row = { name: s.name, kase, sequential: medianRun(r.sequential) };
        if (r.batch.length > 0) row.batch = medianRun(r.batch);
        rows.push(row);
        ctx.log(
          `7 ${kase} ${s.name}: batch ${row.batch === undefined ? '—' : fmtInt(row.batch.opsPerSec)}/s, sequential ${fmtInt(row.sequential.opsPerSec)}/s`,
        );
      }
    }
  } finally {
    await Promise.all(subjects.map((s) => s.close()));
  }
  const body = rows.map((r) => [
    r.name,
    r.kase === 'hit' ? 'all in Redis' : 'all new (miss + set)',
    r.batch === undefined ? 'no batch API' : fmtInt(r.batch.opsPerSec),
    r.batch === undefined ? '—' : fmtUs(r.batch.p50Us),
    r.batch === undefined ? '—' : fmtUs(r.batch.p99Us),
    fmtInt(r.sequential.opsPerSec),
    fmtUs(r.sequential.p50Us),
    fmtUs(r.sequential.p99Us),
    fmtRatio(r.batch === undefined ? undefined : r.batch.opsPerSec / r.sequential.opsPerSec),
  ]);
  const markdown = [
    table(
      [
        'subject',
        'keys',
        'batch: batches/s',
        'batch p50 µs',
        'batch p99 µs',
        'sequential: batches/s',
        'seq. p50 µs',
        'seq. p99 µs',
        'batch ÷ sequential',
      ],
      body,
      2,
    ),
    '- One row = 100 keys. Batch: Larder `getOrSetMany` (one MGET, one batch loader call, one pipelined write); ' +
      'cacheable `getMany` + `setMany`; cache-manager `mget` + `mset`; raw ioredis MGET + pipelined SET PX. ' +
      'BentoCache 1.6 has no batch get. Sequential: 100 awaited getOrSet calls.',
  ].join('\n\n');
  const verdicts: Verdict[] = rows
    .filter((r) => r.name.startsWith('Larder'))
    .map((r) => {
      const ratio = r.batch === undefined ? undefined : r.batch.opsPerSec / r.sequential.opsPerSec;
      return {
        scenario: 7,
        target: `getOrSetMany ≥ 10× sequential (${r.kase === 'hit' ? 'keys in Redis' : 'new keys'})`,
        measured: fmtRatio(ratio),
        met: ratio === undefined ? undefined : ratio >= 10,
      };
    });
  return { scenario: 7, title: 'getOrSetMany of 100 keys vs 100 sequential getOrSet', markdown, verdicts };
}

/** Hits cycle through 100-key windows of the warm keys; misses take 100 never-seen keys each time. */
function keySource(kase: 'hit' | 'miss', hitKeys: string[]): () => string[] {
  let n = 0;
  if (kase === 'hit') {
    return () => {
      const start = (n++ * BATCH) % hitKeys.length;
      return hitKeys.slice(start, start + BATCH);
    };
  }
  const run = Math.random().toString(36).slice(2, 8);
  return () => {
    const batch = n++;
    return Array.from({ length: BATCH }, (_, i) => `m${run}-${batch}-${i}`);
  };
}

/** Half the throughput scenarios' run length: each row is one batch of 100 keys, so runs count fewer calls. */
async function measureOne(op: () => Promise<unknown>, durationMs: number): Promise<RunResult> {
  await timedRun(op, { concurrency: 1, durationMs: durationMs / 8 });
  collectGarbage();
  return timedRun(op, { concurrency: 1, durationMs: durationMs / 2 });
}
