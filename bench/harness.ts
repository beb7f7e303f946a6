import * as hdr from 'hdr-histogram-js';

/** One call of the code under measurement. Async subjects return a promise; it is awaited. */
export type Op = () => unknown;

/** Result of one timed run. Latencies are per call, in microseconds. */
export type RunResult = { ops: number; opsPerSec: number; p50Us: number; p99Us: number };

export type RunOptions = {
  /** Async workers, each awaiting one call at a time in a loop. Ignored when `sync`. */
  concurrency: number;
  durationMs: number;
  /** Call `op` in a plain loop without awaiting it (for synchronous references). */
  sync?: boolean;
};

const MAX_NANOS = 60_000_000_000;

/**
 * Calls `op` for `durationMs`: `concurrency` workers each await `op()` in a loop, and every call's
 * latency is recorded (in nanoseconds) in an HdrHistogram. Throughput counts every call made until
 * the last worker stops. Each latency includes two `performance.now()` readings and, at
 * concurrency > 1, the time spent queued behind other workers.
 */
export async function timedRun(op: Op, options: RunOptions): Promise<RunResult> {
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: MAX_NANOS,
    numberOfSignificantValueDigits: 3,
    autoResize: false,
  });
  const record = (startedAt: number, endedAt: number) =>
    histogram.recordValue(Math.min(Math.max(Math.round((endedAt - startedAt) * 1e6), 1), MAX_NANOS));

  const startedAt = performance.now();
  const deadline = startedAt + options.durationMs;
  let ops = 0;
  if (options.sync) {
    for (;;) {
      const t0 = performance.now();
      op();
      const t1 = performance.now();
      record(t0, t1);
      ops++;
      if (t1 >= deadline) break;
    }
  } else {
    const worker = async () => {
      for (;;) {
        const t0 = performance.now();
        await op();
        const t1 = performance.now();
        record(t0, t1);
        ops++;
        if (t1 >= deadline) return;
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  }
  const elapsedS = (performance.now() - startedAt) / 1000;
  const result = {
    ops,
    opsPerSec: ops / elapsedS,
    p50Us: histogram.getValueAtPercentile(50) / 1000,
    p99Us: histogram.getValueAtPercentile(99) / 1000,
  };
  histogram.destroy();
  return result;
}

/** The run with the median throughput (its own latencies, so that a row is one real run). */
export function medianRun(runs: readonly RunResult[]): RunResult {
  const sorted = [...runs].sort((a, b) => a.opsPerSec - b.opsPerSec);
  return sorted[Math.floor(sorted.length / 2)] as RunResult;
}

/** Full collection before a run, so that one subject's garbage is not collected in another's run. */
export function collectGarbage(): void {
  globalThis.gc?.();
}

/** Summary of a list of latencies in milliseconds (p50, p99, max), `undefined` when empty. */
export type Spread = { count: number; p50: number; p99: number; max: number };

export function spread(valuesMs: readonly number[]): Spread | undefined {
  if (valuesMs.length === 0) return undefined;
  const sorted = Float64Array.from(valuesMs).sort();
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
  return { count: sorted.length, p50: at(50), p99: at(99), max: sorted[sorted.length - 1] as number };
}
