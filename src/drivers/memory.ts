import type { DriverWrite, RedisDriver, StoredValue, Subscription, SubscriptionListener } from './driver.js';

/** Options of a {@link MemoryStore}. */
export type MemoryStoreOptions = {
  /** Clock in epoch milliseconds, read to set and check expiry. @default Date.now */
  now?: () => number;
};

/** Options of the memory driver. */
export type MemoryDriverOptions = {
  /**
   * Keys and channels shared with other memory drivers, so that several caches in one process see
   * each other's writes and messages as if they used one Redis. A store passed in is the caller's:
   * `close()` leaves its data alone. @default a private store, emptied by `close()`
   */
  store?: MemoryStore;
};

const DRIVER_NAME = 'memory';

// Redis's own replies, so code tested on this driver sees the errors it would get from Redis.
const INVALID_EXPIRE = "ERR invalid expire time in 'set' command";
const NOT_AN_INTEGER = 'ERR value is not an integer or out of range';
const OVERFLOW = 'ERR increment or decrement would overflow';
const INVALID_CURSOR = 'ERR invalid cursor';
const SYNTAX = 'ERR syntax error';
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
// Expired entries nobody reads again are found by a few probes per write (Redis's active expiry
// in miniature), so memory stays bounded without a timer.
const SWEEP_PROBES = 4;

class Entry {
  constructor(
    readonly key: string,
    /** Strings as given; bytes as a private copy. */
    public value: StoredValue,
    public expiresAt: number,
    /** Creation order: a SCAN cursor is the last `seq` it visited. */
    readonly seq: number,
  ) {}
  live = true;
}

/**
 * Keys, values, expiry and pub/sub channels of the memory driver: the in-process stand-in for a
 * Redis server. Create one with {@link createMemoryStore} to share it between drivers.
 */
export class MemoryStore {
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  /** Every entry in `seq` order, dead ones included until compaction. */
  #order: Entry[] = [];
  #dead = 0;
  #seq = 0;
  #sweep = 0;
  readonly #channels = new Map<string, Set<(message: string) => void>>();

  /** @internal use {@link createMemoryStore}. */
  constructor(options: MemoryStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  /** Keys stored, expired ones not yet reclaimed included. */
  get size(): number {
    return this.#entries.size;
  }

  /** Removes every key (not the subscriptions). */
  clear(): void {
    for (const entry of this.#order) entry.live = false;
    this.#entries.clear();
    this.#order = [];
    this.#dead = 0;
  }

  /** @internal */
  get(key: string): string | null {
    const value = this.#live(key)?.value;
    return value === undefined ? null : typeof value === 'string' ? value : value.toString();
  }

  /** @internal */
  getBuffer(key: string): Buffer | null {
    const value = this.#live(key)?.value;
    return value === undefined ? null : Buffer.from(value);
  }

  /** @internal Validates like Redis; throws its error reply. */
  set(key: string, given: StoredValue, ttlMs: number, onlyIfAbsent: boolean): boolean {
    const value = typeof given === 'string' ? given : Buffer.from(given);
    const expiresAt = this.#expiry(ttlMs);
    const existing = this.#live(key);
    if (existing !== undefined) {
      if (onlyIfAbsent) return false;
      existing.value = value;
      existing.expiresAt = expiresAt;
      return true;
    }
    this.#insert(key, value, expiresAt);
    this.#sweepSome();
    return true;
  }

  /** @internal */
  delete(key: string): boolean {
    const entry = this.#live(key);
    if (entry === undefined) return false;
    this.#remove(entry);
    return true;
  }

  /** @internal */
  deleteIfEquals(key: string, value: string): boolean {
    const entry = this.#live(key);
    if (entry === undefined || entry.value.toString() !== value) return false;
    this.#remove(entry);
    return true;
  }

  /** @internal INCRBY: keeps the key's TTL, creates a missing key without one. */
  incrBy(key: string, increment: number): number {
    if (!Number.isSafeInteger(increment)) throw new Error(NOT_AN_INTEGER);
    const entry = this.#live(key);
    let current = 0n;
    if (entry !== undefined) {
      const text = entry.value.toString();
      if (!/^(?:0|-?[1-9][0-9]{0,19})$/.test(text)) throw new Error(NOT_AN_INTEGER);
      current = BigInt(text);
      if (current < INT64_MIN || current > INT64_MAX) throw new Error(NOT_AN_INTEGER);
    }
    const next = current + BigInt(increment);
    if (next < INT64_MIN || next > INT64_MAX) throw new Error(OVERFLOW);
    if (entry === undefined) {
      this.#insert(key, String(next), Number.POSITIVE_INFINITY);
      this.#sweepSome();
    } else entry.value = String(next);
    return Number(next);
  }

  /** @internal One SCAN page: visits up to `count` keys after `cursor`, returns those matching. */
  scan(cursor: string, match: string, count: number): { cursor: string; keys: string[] } {
    if (!/^[0-9]+$/.test(cursor)) throw new Error(INVALID_CURSOR);
    if (!Number.isInteger(count) || count < 1) throw new Error(SYNTAX);
    const after = Number(cursor);
    const pattern = Buffer.from(match, 'utf8');
    const matches = compileMatcher(match, pattern);
    const order = this.#order;
    const now = this.#now();
    const keys: string[] = [];
    let i = firstAfter(order, after);
    let visited = 0;
    let last = after;
    for (; i < order.length && visited < count; i++) {
      const entry = order[i] as Entry;
      visited += 1;
      last = entry.seq;
      if (!entry.live) continue;
      if (entry.expiresAt < now) {
        this.#remove(entry);
        continue;
      }
      if (matches(entry.key)) keys.push(entry.key);
    }
    // Entries left to visit (dead ones too: a page may come back empty, as on Redis).
    const more = i < order.length;
    this.#compactIfSparse();
    return { cursor: more ? String(last) : '0', keys };
  }

  /** @internal Delivers to this process's subscribers, each in a microtask, in publish order. */
  publish(channel: string, message: string): void {
    const listeners = this.#channels.get(channel);
    if (listeners === undefined) return;
    for (const deliver of listeners) queueMicrotask(() => deliver(message));
  }

  /** @internal Returns the unsubscribe function. */
  subscribe(channel: string, listener: SubscriptionListener): () => void {
    let listeners = this.#channels.get(channel);
    if (listeners === undefined) {
      listeners = new Set();
      this.#channels.set(channel, listeners);
    }
    // A fresh closure per subscription: the same listener may subscribe twice, and a message
    // queued before an unsubscribe must not arrive after it.
    const deliver = (message: string): void => {
      if (listeners.has(deliver)) listener.message(message);
    };
    listeners.add(deliver);
    return () => {
      listeners.delete(deliver);
      if (listeners.size === 0 && this.#channels.get(channel) === listeners) this.#channels.delete(channel);
    };
  }

  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    // As Redis (db.c keyIsExpired): expired only once the clock is past the deadline.
    if (entry.expiresAt >= this.#now()) return entry;
    this.#remove(entry);
    return undefined;
  }

  #expiry(ttlMs: number): number {
    if (!Number.isInteger(ttlMs)) throw new Error(NOT_AN_INTEGER);
    if (ttlMs <= 0) throw new Error(INVALID_EXPIRE);
    return this.#now() + ttlMs;
  }

  #insert(key: string, value: StoredValue, expiresAt: number): void {
    this.#seq += 1;
    const entry = new Entry(key, value, expiresAt, this.#seq);
    this.#entries.set(key, entry);
    this.#order.push(entry);
  }

  #remove(entry: Entry): void {
    if (!entry.live) return;
    entry.live = false;
    this.#entries.delete(entry.key);
    this.#dead += 1;
  }

  #compactIfSparse(): void {
    if (this.#dead < 64 || this.#dead < this.#order.length / 2) return;
    this.#order = this.#order.filter((e) => e.live);
    this.#dead = 0;
    this.#sweep = 0;
  }

  #sweepSome(): void {
    const order = this.#order;
    if (order.length === 0) return;
    const now = this.#now();
    for (let probe = 0; probe < SWEEP_PROBES; probe++) {
      if (this.#sweep >= order.length) this.#sweep = 0;
      const entry = order[this.#sweep] as Entry;
      this.#sweep += 1;
      if (entry.live && entry.expiresAt < now) this.#remove(entry);
    }
    this.#compactIfSparse();
  }
}

/** Creates a store to share between memory drivers (see {@link MemoryDriverOptions.store}). */
export function createMemoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  return new MemoryStore(options);
}

/**
 * Creates a driver that keeps everything in this process: for tests of code that uses Larder and
 * for single-process apps that want Larder's API without a Redis.
 *
 * It implements the whole interface with Redis's semantics and error replies: PX expiry (checked
 * when a key is touched, plus a few probes per write, so no timer ever runs), SET NX,
 * compare-and-delete, INCRBY on 64-bit integers, SCAN with Redis's glob MATCH (`*`, `?`,
 * `[...]`, `\` escapes, on UTF-8 bytes) and COUNT paging, and pub/sub to subscribers of the same
 * store. `isReady` is true until `close()`.
 * @example
 * const cache = createCache({ redis: { driver: createMemoryDriver() } });
 */
export function createMemoryDriver(options: MemoryDriverOptions = {}): RedisDriver {
  const owned = options.store === undefined;
  const store = options.store ?? new MemoryStore();
  const subscriptions = new Set<() => void>();
  let closed = false;

  // Every method answers asynchronously, as a network driver would, and rejects once closed.
  function run<T>(command: () => T): Promise<T> {
    if (closed) return Promise.reject(new Error('The memory driver was closed'));
    try {
      return Promise.resolve(command());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  return {
    name: DRIVER_NAME,
    endpoint: owned ? 'memory' : 'memory (shared store)',
    get isReady() {
      return !closed;
    },
    mget: (keys) => run(() => keys.map((key) => store.get(key))),
    mgetBuffers: (keys) => run(() => keys.map((key) => store.getBuffer(key))),
    set: (key, value, ttlMs) =>
      run(() => {
        store.set(key, value, ttlMs, false);
      }),
    setMany: (writes: readonly DriverWrite[], _atomic) =>
      // Atomic either way (nothing runs in between); like MULTI/EXEC on Redis, a failed write does
      // not undo the others.
      run(() => {
        settleEach(writes, (w) => store.set(w.key, w.value, w.ttlMs, false));
      }),
    unlink: (keys) => run(() => keys.filter((key) => store.delete(key)).length),
    incrBy: (keys, increment) => run(() => settleEach(keys, (key) => store.incrBy(key, increment))),
    setIfAbsent: (key, value, ttlMs) => run(() => store.set(key, value, ttlMs, true)),
    deleteIfEquals: (key, value) => run(() => store.deleteIfEquals(key, value)),
    publish: (channel, message) => run(() => store.publish(channel, message)),
    subscribe(channel, listener): Subscription {
      // Returns at once like a network driver; up() follows, as a confirmation from a server would.
      if (closed) throw new Error('The memory driver was closed');
      const unsubscribe = store.subscribe(channel, listener);
      let open = true;
      const close = () => {
        if (!open) return;
        open = false;
        subscriptions.delete(close);
        unsubscribe();
      };
      subscriptions.add(close);
      queueMicrotask(() => {
        if (open) listener.up();
      });
      return { close: async () => close() };
    },
    scan: (cursor, match, count) => run(() => store.scan(cursor, match, count)),
    ping: () => run(() => undefined),
    async close() {
      if (closed) return;
      closed = true;
      for (const unsubscribe of subscriptions) unsubscribe();
      subscriptions.clear();
      if (owned) store.clear();
    },
  };
}

/** Applies `apply` to every item, as a pipeline would; throws afterwards if any failed. */
function settleEach<T, R>(items: readonly T[], apply: (item: T) => R): R[] {
  const results: R[] = [];
  const errors: unknown[] = [];
  for (const item of items) {
    try {
      results.push(apply(item));
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length > 0) {
    const first = errors[0] instanceof Error ? errors[0].message : String(errors[0]);
    throw new Error(`${errors.length} of ${items.length} commands failed: ${first}`, { cause: errors[0] });
  }
  return results;
}

/** Index of the first entry whose `seq` is greater than `seq` (binary search: `order` is sorted). */
function firstAfter(order: readonly Entry[], seq: number): number {
  let low = 0;
  let high = order.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((order[mid] as Entry).seq <= seq) low = mid + 1;
    else high = mid;
  }
  return low;
}

const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const CARET = 0x5e;
const DASH = 0x2d;
const BACKSLASH = 0x5c;

/** A key test for a SCAN MATCH pattern; `prefix*` patterns (Larder's own) skip the byte matcher. */
function compileMatcher(match: string, pattern: Uint8Array): (key: string) => boolean {
  const star = match.indexOf('*');
  if (star === match.length - 1 && !/[?[\\]/.test(match)) {
    const prefix = match.slice(0, -1);
    return (key) => key.startsWith(prefix);
  }
  return (key) => globMatch(pattern, Buffer.from(key, 'utf8'));
}

/**
 * Redis's `stringmatchlen` (util.c), ported byte for byte: `?` is one byte, ranges compare signed
 * bytes (C `char`), an unclosed `[` runs to the end of the pattern, and `\` escapes the next byte
 * anywhere. (SCAN itself skips matching for the pattern `*`.)
 */
export function globMatch(pattern: Uint8Array, subject: Uint8Array): boolean {
  return matchFrom(pattern, 0, subject, 0, { skipLonger: false }, 0);
}

function signedByte(byte: number): number {
  return (byte << 24) >> 24;
}

function matchFrom(
  p: Uint8Array,
  pi: number,
  s: Uint8Array,
  si: number,
  state: { skipLonger: boolean },
  nesting: number,
): boolean {
  // Redis bounds the recursion the same way, against patterns like `*a*a*a*…`.
  if (nesting > 1000) return false;
  while (pi < p.length && si < s.length) {
    const c = p[pi];
    if (c === STAR) {
      while (p[pi + 1] === STAR) pi++;
      if (pi === p.length - 1) return true;
      while (si < s.length) {
        if (matchFrom(p, pi + 1, s, si, state, nesting + 1)) return true;
        // The rest of the pattern matched nowhere later: longer matches of this star cannot help.
        if (state.skipLonger) return false;
        si++;
      }
      state.skipLonger = true;
      return false;
    } else if (c === QUESTION) {
      si++;
    } else if (c === OPEN) {
      pi++;
      const negate = p[pi] === CARET;
      if (negate) pi++;
      let found = false;
      for (;;) {
        if (p[pi] === BACKSLASH && p.length - pi >= 2) {
          pi++;
          if (p[pi] === s[si]) found = true;
        } else if (p[pi] === CLOSE) {
          break;
        } else if (pi >= p.length) {
          pi--;
          break;
        } else if (p.length - pi >= 3 && p[pi + 1] === DASH) {
          // Redis compares C chars here, signed on x86-64 and most builds: a UTF-8 byte (0x80 and
          // up) is negative, so `[a-é` spans the bytes 0xC3 (-61) to 'a', not 'a' to 0xC3.
          let start = signedByte(p[pi] as number);
          let end = signedByte(p[pi + 2] as number);
          if (start > end) [start, end] = [end, start];
          const byte = signedByte(s[si] as number);
          pi += 2;
          if (byte >= start && byte <= end) found = true;
        } else if (p[pi] === s[si]) {
          found = true;
        }
        pi++;
      }
      if (negate) found = !found;
      if (!found) return false;
      si++;
    } else {
      if (c === BACKSLASH && p.length - pi >= 2) pi++;
      if (p[pi] !== s[si]) return false;
      si++;
    }
    pi++;
    if (si === s.length) {
      while (p[pi] === STAR) pi++;
      break;
    }
  }
  return pi === p.length && si === s.length;
}
