import { LRUCache } from 'lru-cache';
import type { VersionCell } from '../cache/versions.js';

// Largest offset kept: 2^31 - 1 ms (24.8 days) is a small integer (Smi) in V8 on every platform.
const MAX_OFFSET_MS = 2 ** 31 - 1;

/** `time - createdAt` as a small integer, clamped to ±24.8 days (see {@link MemoryEntry}). */
function offset(time: number, createdAt: number): number {
  const ms = time - createdAt;
  return ms >= MAX_OFFSET_MS ? MAX_OFFSET_MS : ms <= -MAX_OFFSET_MS ? -MAX_OFFSET_MS : Math.floor(ms) | 0;
}

/**
 * An entry of the memory tier: the decoded value, its times and the versions it was written under.
 *
 * Times (epoch ms): `freshUntil` ≤ `expiresAt` ≤ `graceUntil`. Until `freshUntil` the entry is
 * served without asking Redis (it is capped by `memory.maxTtl` and, while the bus is down, by its
 * short TTL). Until `expiresAt` it is logically fresh: served when Redis cannot be asked. Until
 * `graceUntil` it is stale: served only when a loader fails or is slow.
 *
 * Only `createdAt` is kept as an epoch time; the others are kept as millisecond offsets from it,
 * small integers that V8 stores inside the object, where epoch times would each be a separate
 * 16-byte heap number (64 bytes per entry saved). Offsets are clamped to 24.8 days: a memory copy
 * living that long is simply dropped, or refreshed, earlier than Redis's.
 */
export class MemoryEntry {
  readonly #freshFor: number;
  readonly #expiresIn: number;
  readonly #graceFor: number;
  #refreshIn: number;

  constructor(
    readonly value: unknown,
    readonly createdAt: number,
    freshUntil: number,
    expiresAt: number,
    graceUntil: number,
    readonly cells: readonly VersionCell[],
    readonly versions: readonly number[],
    /** First `getOrSet` hit after this starts a background reload; `Infinity` never. */
    refreshAt = Number.POSITIVE_INFINITY,
    /** A stale value served while its loader backs off after a failure. */
    readonly stale = false,
    /** The tier's trust epoch when stored; entries of an older epoch must be checked with Redis. */
    public epoch = 0,
  ) {
    this.#freshFor = offset(freshUntil, createdAt);
    this.#expiresIn = offset(expiresAt, createdAt);
    this.#graceFor = offset(graceUntil, createdAt);
    this.#refreshIn = offset(refreshAt, createdAt);
  }

  get freshUntil(): number {
    return this.createdAt + this.#freshFor;
  }

  get expiresAt(): number {
    return this.createdAt + this.#expiresIn;
  }

  get graceUntil(): number {
    return this.createdAt + this.#graceFor;
  }

  /** When a hit starts a background reload. Mutable: pushed back after a refresh starts or fails. */
  get refreshAt(): number {
    return this.createdAt + this.#refreshIn;
  }

  set refreshAt(time: number) {
    this.#refreshIn = offset(time, this.createdAt);
  }

  /** Every recorded version still equals its cell. Allocates nothing. */
  versionsValid(): boolean {
    const { cells, versions } = this;
    for (let i = 0; i < cells.length; i++) {
      if ((cells[i] as VersionCell).value !== versions[i]) return false;
    }
    return true;
  }
}

// Bookkeeping bytes per entry on top of key and value (LRU node, MemoryEntry, arrays).
const ENTRY_OVERHEAD_BYTES = 160;

/**
 * The in-process tier: an LRU bounded by entry count and by bytes (lru-cache). Values are kept
 * decoded, so a hit costs a map lookup and a few comparisons, with no parsing. Callers must treat
 * returned values as immutable.
 */
export class MemoryTier {
  readonly #lru: LRUCache<string, MemoryEntry>;
  #epoch = 0;

  constructor(maxEntries: number, maxBytes: number) {
    this.#lru = new LRUCache<string, MemoryEntry>({ max: maxEntries, maxSize: maxBytes });
  }

  /** An entry to serve without asking Redis, or `undefined`. Entries past use are dropped. */
  get(key: string, now: number): MemoryEntry | undefined {
    const entry = this.#lru.get(key);
    if (entry === undefined) return undefined;
    if (now < entry.freshUntil && entry.epoch === this.#epoch && entry.versionsValid()) return entry;
    if (now >= entry.graceUntil || !entry.versionsValid()) this.#lru.delete(key);
    return undefined;
  }

  /**
   * Stops trusting every entry without dropping it: each must be checked with Redis before it is
   * served as fresh again, but stays available as a fallback while Redis cannot be asked. Used
   * when invalidation messages may have been missed.
   */
  distrustAll(): void {
    this.#epoch++;
  }

  /** Any entry still usable as a fallback (versions valid, within grace), without touching recency. */
  peek(key: string, now: number): MemoryEntry | undefined {
    const entry = this.#lru.peek(key);
    return entry !== undefined && now < entry.graceUntil && entry.versionsValid() ? entry : undefined;
  }

  /** Stores an entry; `encodedBytes` is its serialized size, used for the byte bound. */
  set(key: string, entry: MemoryEntry, encodedBytes: number): void {
    entry.epoch = this.#epoch;
    this.#lru.set(key, entry, { size: encodedBytes + key.length * 2 + ENTRY_OVERHEAD_BYTES });
  }

  delete(key: string): void {
    this.#lru.delete(key);
  }

  /** Drops every entry whose key starts with `prefix` (used by `clear()` to free memory early). */
  deleteByPrefix(prefix: string): number {
    let removed = 0;
    for (const key of this.#lru.keys()) {
      if (key.startsWith(prefix)) {
        this.#lru.delete(key);
        removed++;
      }
    }
    return removed;
  }

  get entries(): number {
    return this.#lru.size;
  }

  get bytes(): number {
    return this.#lru.calculatedSize;
  }

  clear(): void {
    this.#lru.clear();
  }
}
