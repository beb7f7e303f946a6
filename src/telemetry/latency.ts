import * as hdr from 'hdr-histogram-js';

const MAX_MICROS = 60_000_000;

/** A latency recorder in microseconds with percentiles (HdrHistogram, 2 significant digits). */
export class LatencyHistogram {
  readonly #histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: MAX_MICROS,
    numberOfSignificantValueDigits: 2,
    useWebAssembly: false,
  });

  /** Records a duration measured from `performance.now()` readings. */
  recordSince(startedAt: number): void {
    const micros = Math.round((performance.now() - startedAt) * 1000);
    this.#histogram.recordValue(Math.min(Math.max(micros, 1), MAX_MICROS));
  }

  /** Count, p50 and p99 in microseconds (zeros when empty). */
  summary(): LatencySummary {
    const count = this.#histogram.totalCount;
    if (count === 0) return { count: 0, p50: 0, p99: 0 };
    return {
      count,
      p50: this.#histogram.getValueAtPercentile(50),
      p99: this.#histogram.getValueAtPercentile(99),
    };
  }

  reset(): void {
    this.#histogram.reset();
  }
}

/** Percentiles of a latency histogram, in microseconds. */
export type LatencySummary = { count: number; p50: number; p99: number };
