import { fmtInt, fmtMs, type Section, table, type Verdict } from '../report.js';
import { Worker } from '../processes.js';
import { createSubject, SUBJECTS, type SubjectId } from '../subjects.js';
import { sleep, withTimeout } from '../workload.js';
import type { Context } from './context.js';

/** Scenario 4: 1,000 concurrent getOrSet on one cold key, 50 ms loader; in one process and across 4. */

const CALLS = 1000;
const LOADER_MS = 50;
const PROCESSES = 4;
const CALL_TIMEOUT_MS = 15_000;

const IN_PROCESS: SubjectId[] = [
  'larder-hybrid',
  'larder-redis',
  'larder-memory',
  'bento-hybrid',
  'bento-redis',
  'cacheable-hybrid',
  'cache-manager',
  'ioredis',
  'lru-awaited',
];

/** Cross-process: every subject with a shared tier other processes could see. */
const CROSS_PROCESS: Array<{ id: SubjectId; lock: boolean; name: string }> = [
  { id: 'larder-hybrid', lock: true, name: 'Larder (memory+Redis), `distributedLock: {}`' },
  { id: 'larder-hybrid', lock: false, name: 'Larder (memory+Redis), no distributedLock (default)' },
  { id: 'bento-hybrid', lock: false, name: SUBJECTS['bento-hybrid'] },
  { id: 'bento-redis', lock: false, name: SUBJECTS['bento-redis'] },
  { id: 'cacheable-hybrid', lock: false, name: SUBJECTS['cacheable-hybrid'] },
  { id: 'cache-manager', lock: false, name: SUBJECTS['cache-manager'] },
];

type Outcome = { loaderCalls: number; errors: number; values: number; ms: number; failed?: string };
type Reply = {
  loaderCalls?: number;
  errors?: number;
  values?: string[];
  ms?: number;
  error?: string;
  exited?: boolean;
};

const failedOutcome = (why: string): Outcome => ({
  loaderCalls: NaN,
  errors: NaN,
  values: NaN,
  ms: NaN,
  failed: why,
});

export async function runStampede(ctx: Context): Promise<Section> {
  const local: Array<[string, Outcome]> = [];
  for (const id of IN_PROCESS) {
    const outcome = await inProcess(ctx, id);
    ctx.log(`4 in-process ${SUBJECTS[id]}: ${outcome.loaderCalls} loader calls, ${fmtMs(outcome.ms)} ms`);
    local.push([SUBJECTS[id], outcome]);
  }
  const remote = await acrossProcesses(ctx);
  const rows = (list: Array<[string, Outcome]>) =>
    list.map(([name, o]) =>
      o.failed !== undefined
        ? [name, `measurement failed: ${o.failed.slice(0, 80)}`, '—', '—', '—']
        : [name, fmtInt(o.loaderCalls), fmtInt(o.values), fmtInt(o.errors), fmtMs(o.ms)],
    );
  const header = ['subject', 'loader calls', 'distinct values', 'errors', 'wall ms'];
  const markdown = [
    `**One process: ${fmtInt(CALLS)} concurrent calls**`,
    table(header, rows(local)),
    `**${PROCESSES} OS processes × ${CALLS / PROCESSES} concurrent calls** (each process its own instance, ` +
      'all released together; wall time is the slowest process)',
    table(header, rows(remote)),
    '- Raw ioredis and lru-cache have no single flight: every call that misses runs the loader (the baseline).',
    '- `distinct values`: how many different loader results the callers received (1 = everyone got the same value).',
  ].join('\n\n');
  const verdicts: Verdict[] = [];
  const inProc = local.find(([n]) => n === SUBJECTS['larder-hybrid'])?.[1];
  const cross = remote.find(([n]) => n.includes('distributedLock: {}'))?.[1];
  verdicts.push({
    scenario: 4,
    target: 'exactly 1 loader call in-process (Larder memory+Redis)',
    measured: inProc === undefined ? '—' : `${inProc.loaderCalls} call(s), ${fmtMs(inProc.ms)} ms`,
    met: inProc === undefined ? undefined : inProc.loaderCalls === 1 && inProc.errors === 0,
  });
  verdicts.push({
    scenario: 4,
    target: `exactly 1 loader call across ${PROCESSES} processes (with distributedLock)`,
    measured:
      cross === undefined || cross.failed !== undefined
        ? `measurement failed: ${cross?.failed ?? 'not run'}`
        : `${cross.loaderCalls} call(s), ${fmtMs(cross.ms)} ms`,
    met:
      cross === undefined || cross.failed !== undefined
        ? undefined
        : cross.loaderCalls === 1 && cross.errors === 0,
  });
  return {
    scenario: 4,
    title: 'Stampede: 1,000 concurrent getOrSet on one cold key, 50 ms loader',
    markdown,
    verdicts,
  };
}

async function inProcess(ctx: Context, id: SubjectId): Promise<Outcome> {
  const subject = createSubject(id, { url: ctx.url, tag: `s4-${id}` });
  try {
    await withTimeout(subject.ready(), 10_000);
    let loaderCalls = 0;
    const loader = async () => {
      const n = ++loaderCalls;
      await sleep(LOADER_MS);
      return { n };
    };
    const started = performance.now();
    const results = await Promise.allSettled(
      Array.from({ length: CALLS }, () =>
        withTimeout(subject.getOrSet('cold', loader, 60_000), CALL_TIMEOUT_MS),
      ),
    );
    const ms = performance.now() - started;
    const values = new Set(
      results.flatMap((r) => (r.status === 'fulfilled' ? [JSON.stringify(r.value)] : [])),
    );
    const errors = results.filter((r) => r.status === 'rejected').length;
    return { loaderCalls, errors, values: values.size, ms };
  } finally {
    await subject.close();
  }
}

async function acrossProcesses(ctx: Context): Promise<Array<[string, Outcome]>> {
  const workers = Array.from({ length: PROCESSES }, () => new Worker('stampede-worker.ts'));
  const out: Array<[string, Outcome]> = [];
  try {
    for (const [i, subject] of CROSS_PROCESS.entries()) {
      const tag = `s4x-${i}-${subject.id}`;
      for (const w of workers)
        w.send({ cmd: 'prepare', id: subject.id, tag, url: ctx.url, lock: subject.lock });
      const ready = await Promise.all(workers.map((w) => w.next<Reply>(60_000)));
      const notReady = ready.find((r) => r.error !== undefined || r.exited === true);
      if (notReady !== undefined) {
        out.push([subject.name, failedOutcome(notReady.error ?? 'a worker exited')]);
        continue;
      }
      await sleep(100); // let the buses subscribe
      for (const w of workers) {
        w.send({
          cmd: 'go',
          key: 'cold',
          concurrency: CALLS / PROCESSES,
          loaderMs: LOADER_MS,
          timeoutMs: CALL_TIMEOUT_MS,
        });
      }
      const results = await Promise.all(workers.map((w) => w.next<Reply>(30_000)));
      const bad = results.find((r) => r.loaderCalls === undefined);
      const outcome: Outcome =
        bad !== undefined
          ? failedOutcome(bad.error ?? 'a worker exited')
          : {
              loaderCalls: results.reduce((n, r) => n + (r.loaderCalls ?? 0), 0),
              errors: results.reduce((n, r) => n + (r.errors ?? 0), 0),
              values: new Set(results.flatMap((r) => r.values ?? [])).size,
              ms: Math.max(...results.map((r) => r.ms ?? 0)),
            };
      ctx.log(
        `4 across ${PROCESSES} processes ${subject.name}: ${outcome.loaderCalls} loader calls, ${fmtMs(outcome.ms)} ms`,
      );
      out.push([subject.name, outcome]);
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
  return out;
}
