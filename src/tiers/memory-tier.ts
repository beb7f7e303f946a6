import { LRUCache } from 'lru-cache';
import type { VersionCell } from '../cache/versions.js';

// Largest offset kept: 2^31 - 1 ms (24.8 days) is a small integer (Smi) in V8 on 64-bit Node.
const MAX_OFFSET_MS = 2 ** 31 - 1;

// Entries keep `createdAt` as milliseconds since this process loaded the module: a small integer
// for the first 24.8 days of uptime. Past that V8 stores it boxed (16 bytes more per entry).
const TIME_BASE = Date.now();

/** `time - createdAt` as a small integer, clamped to ±24.8 days (see {@link MemoryEntry}). */
function offset(time: number, createdAt: number): number {
  const ms = time - createdAt;
  return ms >= MAX_OFFSET_MS ? MAX_OFFSET_MS : ms <= -MAX_OFFSET_MS ? -MAX_OFFSET_MS : Math.floor(ms) | 0;
}

/**
 * What entries written together share: the version cells they depend on, the cells' values when
 * written, and the refresh-ahead fraction of their TTL (`undefined`: none).
 */
type EntryStamp = {
  readonly cells: readonly VersionCell[];
  readonly versions: readonly number[];
  readonly refreshAhead: number | undefined;
};

// One stamp per versions array: entries of one scope share their scope's snapshot array
// (VersionRegistry.snapshot), and so one stamp, instead of three fields each.
const stamps = new WeakMap<readonly number[], EntryStamp>();

function stampOf(
  cells: readonly VersionCell[],
  versions: readonly number[],
  refreshAhead: number | undefined,
): EntryStamp {
  const known = stamps.get(versions);
  if (known !== undefined && known.cells === cells && known.refreshAhead === refreshAhead) return known;
  const stamp = { cells, versions, refreshAhead };
  stamps.set(versions, stamp);
  return stamp;
}

const STALE = 1;
const REFRESH_STARTED = 2;
const EPOCH_SHIFT = 2;

/**
 * An entry of the memory tier: the decoded value, its times and the versions it was written under.
 *
 * Times (epoch ms): `freshUntil` ≤ `expiresAt` ≤ `graceUntil`. Until `freshUntil` the entry is
 * served without asking Redis (it is capped by `memory.maxTtl` and, while the bus is down, by its
 * short TTL). Until `expiresAt` it is logically fresh: served when Redis cannot be asked. Until
 * `graceUntil` it is stale: served only when a loader fails or is slow.
 *
 * Its layout is kept small, as there can be millions: every field is a small integer V8 stores
 * inside the object (an epoch time would each be a separate 16-byte heap number). `createdAt` is
 * kept relative to the module's load time, the other times as millisecond offsets from
 * `createdAt`, clamped to 24.8 days (a memory copy living that long is simply dropped, or
 * refreshed, earlier than Redis's). The versions and the refresh-ahead fraction are one object
 * shared by the entries of a scope; the stale and refresh marks and the tier's trust epoch share
 * one field.
 */
export class MemoryEntry {
  readonly value: unknown;
  readonly #created: number;
  readonly #freshFor: number;
  readonly #expiresIn: number;
  readonly #graceFor: number;
  readonly #stamp: EntryStamp;
  // Bit 0: stale; bit 1: refresh started; the rest: the tier's trust epoch when stored.
  #flags: number;

  constructor(
    value: unknown,
    createdAt: number,
    freshUntil: number,
    expiresAt: number,
    graceUntil: number,
    cells: readonly VersionCell[],
    versions: readonly number[],
    /**
     * The first `getOrSet` hit past this fraction of the TTL (`expiresAt - createdAt`) starts a
     * background reload; `undefined`: never.
     */
    refreshAhead: number | undefined = undefined,
    /** A stale value served while its loader backs off after a failure. */
    stale = false,
  ) {
    this.value = value;
    // Whole milliseconds, and not more than 24.8 days before the module loaded (an older copy
    // counts as created then: its other times, offsets from it, are clamped the same way). No
    // upper clamp: after 24.8 days of uptime the field is a heap number, still exact.
    const created = Math.max(Math.floor(createdAt) - TIME_BASE, -MAX_OFFSET_MS);
    this.#created = created;
    const base = TIME_BASE + created;
    this.#freshFor = offset(freshUntil, base);
    this.#expiresIn = offset(expiresAt, base);
    this.#graceFor = offset(graceUntil, base);
    this.#stamp = stampOf(cells, versions, refreshAhead);
    this.#flags = stale ? STALE : 0;
  }

  /** Epoch milliseconds when the value was produced. */
  get createdAt(): number {
    return TIME_BASE + this.#created;
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

  /** When a hit starts a background reload: `Infinity` without refresh-ahead or once one started. */
  get refreshAt(): number {
    const fraction = this.#stamp.refreshAhead;
    if (fraction === undefined || (this.#flags & REFRESH_STARTED) !== 0) return Number.POSITIVE_INFINITY;
    return this.createdAt + this.#expiresIn * fraction;
  }

  /** Records that a hit started this entry's refresh: one per entry. */
  refreshStarted(): void {
    this.#flags |= REFRESH_STARTED;
  }

  /** A stale value served while its loader backs off after a failure. */
  get stale(): boolean {
    return (this.#flags & STALE) !== 0;
  }

  /** The tier's trust epoch when stored; entries of an older epoch must be checked with Redis. */
  get epoch(): number {
    return this.#flags >>> EPOCH_SHIFT;
  }

  set epoch(epoch: number) {
    this.#flags = (epoch << EPOCH_SHIFT) | (this.#flags & (STALE | REFRESH_STARTED));
  }

  get cells(): readonly VersionCell[] {
    return this.#stamp.cells;
  }

  get versions(): readonly number[] {
    return this.#stamp.versions;
  }

  /** Every recorded version still equals its cell. Allocates nothing. */
  versionsValid(): boolean {
    const { cells, versions } = this.#stamp;
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
    this.#epoch = (this.#epoch + 1) & 0x1fffffff; // stored shifted in MemoryEntry's flags
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
