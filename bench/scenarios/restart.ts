import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { spread } from '../harness.js';
import { labelPort, startRedis, stopRedis, takeStrayErrors } from '../processes.js';
import { fmtInt, fmtMs, type Section, table, type Verdict } from '../report.js';
import { type CacheSubject, createSubject, type SubjectId } from '../subjects.js';
import { makeValue, SMALL_VALUE, sleep, TimeoutError, withTimeout, yieldToLoop } from '../workload.js';
import type { Context } from './context.js';

/**
 * Scenario 6: every subject loops getOrSet on distinct keys (each a miss: read, load, write) for 6 s,
 * all at once against one redis-server that is killed (SIGKILL) at 2 s and restarted, empty, at 3.5 s.
 * "Redis used again" is the first time a key of the subject shows up in the restarted server.
 */

const RUN_MS = 6000;
const KILL_AT_MS = 2000;
const RESTART_AT_MS = 3500;
const CALL_TIMEOUT_MS = 10_000;
const POLL_MS = 20;

const SUBJECT_IDS: SubjectId[] = [
  'larder-hybrid',
  'larder-redis',
  'bento-hybrid',
  'bento-redis',
  'cacheable-hybrid',
  'cache-manager',
  'ioredis',
  'node-redis',
];

type Lane = {
  subject: CacheSubject;
  tag: string;
  calls: number;
  errors: number;
  timeouts: number;
  latencies: number[];
  /** Longest call that started during the outage window or after it. */
  maxStallMs: number;
  /** When that call started, ms after the loop started. */
  maxStallAtMs: number;
  errorKinds: Set<string>;
  /** ms after the restarted server answered PING. */
  redisAgainMs: number | undefined;
  /** Larder: ms after restart until stats() shows the circuit closed and a Redis round trip counted. */
  statsAgainMs: number | undefined;
};

export async function runRestart(ctx: Context): Promise<Section> {
  const server = await startRedis();
  labelPort(server.port, 'scenario 6');
  takeStrayErrors([server.port]);
  const value = makeValue(SMALL_VALUE);
  const lanes: Lane[] = SUBJECT_IDS.map((id) => {
    const tag = `s6-${id}`;
    return {
      subject: createSubject(id, { url: server.url, tag }),
      tag,
      calls: 0,
      errors: 0,
      timeouts: 0,
      latencies: [],
      maxStallMs: 0,
      maxStallAtMs: 0,
      errorKinds: new Set<string>(),
      redisAgainMs: undefined,
      statsAgainMs: undefined,
    };
  });
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  let restartedAt: number | undefined;
  try {
    await Promise.all(lanes.map((l) => withTimeout(l.subject.ready(), 10_000)));
    const started = performance.now();
    loopDelay.enable();
    const loops = lanes.map((l) => loop(l, value, started));
    await sleep(KILL_AT_MS);
    await server.kill();
    ctx.log('6 redis-server killed');
    await sleep(Math.max(0, RESTART_AT_MS - (performance.now() - started)));
    await server.restart();
    restartedAt = performance.now();
    ctx.log('6 redis-server restarted');
    const watching = watch(server.url, lanes, restartedAt, started + RUN_MS + 3000);
    await Promise.all(loops);
    await watching;
    loopDelay.disable();
  } finally {
    await Promise.all(lanes.map((l) => withTimeout(l.subject.close(), 5000).catch(() => undefined)));
    await stopRedis(server);
  }
  const stray = takeStrayErrors([server.port]);
  for (const l of lanes) {
    ctx.log(
      `6 ${l.subject.name}: ${l.errors} errors, max stall ${fmtMs(l.maxStallMs)} ms, Redis again after ${fmtMs(l.redisAgainMs)} ms`,
    );
  }
  const body = lanes.map((l) => {
    const s = spread(l.latencies);
    return [
      l.subject.name,
      fmtInt(l.calls),
      `${l.errors} (${l.timeouts})`,
      fmtMs(s?.p50),
      fmtMs(s?.p99),
      fmtMs(l.maxStallMs),
      `${(l.maxStallAtMs / 1000).toFixed(2)} s`,
      l.redisAgainMs === undefined ? 'not within 2.5 s' : fmtMs(l.redisAgainMs),
    ];
  });
  const markdown = [
    table(
      [
        'subject',
        'calls',
        'errors (timeouts)',
        'p50 ms',
        'p99 ms',
        'max stall ms',
        'longest call started at',
        'Redis used again, ms after restart',
      ],
      body,
    ),
    `- Kill at ${KILL_AT_MS / 1000} s (SIGKILL), restart at ${RESTART_AT_MS / 1000} s (empty server, same port); each call is bounded by the benchmark's ${CALL_TIMEOUT_MS / 1000} s timeout; "max stall" is the longest single call.`,
    `- "Redis used again": the first key of the subject seen in the restarted server (polled every ${POLL_MS} ms), measured from when the restarted server answered PING. For Larder, stats() agreed: ${lanes
      .filter((l) => l.subject.larder !== undefined)
      .map(
        (l) =>
          `${l.subject.name} circuit closed and Redis round trips counted again ${fmtMs(l.statsAgainMs)} ms after restart`,
      )
      .join('; ')}.`,
    `- Event-loop delay during the run (all subjects share the loop): max ${fmtMs(loopDelay.max / 1e6)} ms, p99 ${fmtMs(loopDelay.percentile(99) / 1e6)} ms — stalls well above that are the subject waiting.`,
    `- Errors seen: ${
      lanes
        .filter((l) => l.errorKinds.size > 0)
        .map((l) => `${l.subject.name}: ${[...l.errorKinds].join('; ')}`)
        .join(' — ') || 'none'
    }.`,
    `- Stray unhandled rejections / uncaught exceptions: ${stray.length === 0 ? 'none' : stray.join(', ')}.`,
  ].join('\n\n');
  const larder = lanes.filter((l) => l.subject.id === 'larder-hybrid' || l.subject.id === 'larder-redis');
  const verdicts: Verdict[] = larder.flatMap((l) => [
    {
      scenario: 6,
      target: `${l.subject.name}: 0 caller errors`,
      measured: `${l.errors} errors in ${fmtInt(l.calls)} calls`,
      met: l.errors === 0,
    },
    {
      scenario: 6,
      target: `${l.subject.name}: no caller stalls more than 100 ms`,
      measured: `max ${fmtMs(l.maxStallMs)} ms`,
      met: l.maxStallMs <= 100,
    },
    {
      scenario: 6,
      target: `${l.subject.name}: Redis tier used again ≤ 2 s after restart`,
      measured: l.redisAgainMs === undefined ? 'not seen' : `${fmtMs(l.redisAgainMs)} ms`,
      met: l.redisAgainMs !== undefined && l.redisAgainMs <= 2000,
    },
  ]);
  return {
    scenario: 6,
    title: 'Redis killed at 2 s, restarted at 3.5 s, during a 6 s getOrSet loop',
    markdown,
    verdicts,
  };
}

async function loop(lane: Lane, value: object, started: number): Promise<void> {
  const killAt = started + KILL_AT_MS;
  for (let i = 0; performance.now() - started < RUN_MS; i++) {
    const t0 = performance.now();
    try {
      await withTimeout(
        lane.subject.getOrSet(`k${i}`, () => value, 60_000),
        CALL_TIMEOUT_MS,
      );
    } catch (error) {
      lane.errors++;
      if (error instanceof TimeoutError) lane.timeouts++;
      lane.errorKinds.add(
        error instanceof TimeoutError
          ? 'timeout'
          : `${(error as Error).name}: ${(error as Error).message}`.slice(0, 80),
      );
    }
    const ms = performance.now() - t0;
    lane.calls++;
    lane.latencies.push(ms);
    if (t0 >= killAt - 100 && ms > lane.maxStallMs) {
      lane.maxStallMs = ms;
      lane.maxStallAtMs = t0 - started;
    }
    await yieldToLoop();
  }
}

/** Polls the restarted server for each subject's keys, and Larder's stats, until all seen or `until`. */
async function watch(url: string, lanes: Lane[], restartedAt: number, until: number): Promise<void> {
  const probe = new Redis(url, { retryStrategy: () => 50, maxRetriesPerRequest: 1 });
  probe.on('error', () => undefined);
  const baseline = new Map(lanes.map((l) => [l, redisRoundTrips(l)]));
  try {
    while (performance.now() < until && lanes.some((l) => l.redisAgainMs === undefined || pendingStats(l))) {
      for (const l of lanes) {
        if (l.redisAgainMs === undefined) {
          const [, keys] = await probe
            .scan('0', 'MATCH', `${l.tag}:*`, 'COUNT', 100_000)
            .catch(() => ['0', []]);
          if (keys.length > 0) l.redisAgainMs = performance.now() - restartedAt;
        }
        if (pendingStats(l)) {
          const stats = l.subject.larder?.stats();
          if (stats?.redis.circuit === 'closed' && redisRoundTrips(l) > (baseline.get(l) ?? 0)) {
            l.statsAgainMs = performance.now() - restartedAt;
          }
        }
      }
      await sleep(POLL_MS);
    }
  } finally {
    probe.disconnect();
  }
}

function pendingStats(l: Lane): boolean {
  return l.subject.larder !== undefined && l.statsAgainMs === undefined;
}

/** Larder's count of Redis round trips (its redisLatency histogram count) since it started. */
function redisRoundTrips(l: Lane): number {
  const stats = l.subject.larder?.stats();
  if (stats === undefined) return 0;
  return Object.values(stats.namespaces).reduce((n, ns) => n + ns.redisLatencyMicros.count, 0);
}
