/** What the scenarios read and write: values, key orders, small timing helpers. */

export const KEY_COUNT = 10_000;
export const SMALL_VALUE = 200;
export const LARGE_VALUE = 10 * 1024;
/** TTL of entries that must stay for the whole run. */
export const LONG_TTL_MS = 3_600_000;
/** TTL of miss + set entries: short, so that Redis expires the (never reused) keys during the run. */
export const MISS_TTL_MS = 5_000;

/** A JSON object whose `JSON.stringify` is exactly `bytes` long (`id` varies it). */
export function makeValue(bytes: number, id = 123456): Record<string, unknown> {
  const value = { id, name: 'Ada Lovelace', email: 'ada@example.com', active: true, bio: '' };
  value.bio = 'x'.repeat(Math.max(0, bytes - JSON.stringify(value).length));
  return value;
}

/** Key indices in [0, n) drawn from a Zipf distribution (exponent `s`), seeded: hot keys first. */
export function zipfIndices(n: number, length: number, s = 0.99, seed = 42): Uint32Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1) ** s;
    cdf[i] = sum;
  }
  let state = seed >>> 0;
  const random = () => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Uint32Array(length);
  for (let j = 0; j < length; j++) {
    const target = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cdf[mid] as number) < target) lo = mid + 1;
      else hi = mid;
    }
    out[j] = lo;
  }
  return out;
}

/** A cycling reader of a precomputed index array (length a power of 2), mapped to key strings. */
export function keyReader(keys: readonly string[], indices: Uint32Array): () => string {
  const mask = indices.length - 1;
  let i = 0;
  return () => keys[indices[i++ & mask] as number] as string;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Lets timers and I/O run between calls (a loop of already-resolved awaits would starve them). */
export const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs `fn` over `items`, at most `limit` at a time. */
export async function inBatches<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>) {
  for (let i = 0; i < items.length; i += limit) await Promise.all(items.slice(i, i + limit).map(fn));
}

export class TimeoutError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/** `promise`, or a {@link TimeoutError} after `ms` (the promise is left running, its rejection handled). */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new TimeoutError(ms)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
