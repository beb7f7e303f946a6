import { LRUCache } from 'lru-cache';
import type { VersionCell } from '../cache/versions.js';

/** An entry of the memory tier: the decoded value, its expiry and the versions it was written under. */
export class MemoryEntry {
  constructor(
    readonly value: unknown,
    readonly expiresAt: number,
    readonly cells: readonly VersionCell[],
    readonly versions: readonly number[],
  ) {}

  /** True while unexpired and every recorded version still equals its cell. Allocates nothing. */
  isValid(now: number): boolean {
    if (now >= this.expiresAt) return false;
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

  constructor(maxEntries: number, maxBytes: number) {
    this.#lru = new LRUCache<string, MemoryEntry>({ max: maxEntries, maxSize: maxBytes });
  }

  /** A valid entry, or `undefined`; an invalid one is dropped on the way. */
  get(key: string, now: number): MemoryEntry | undefined {
    const entry = this.#lru.get(key);
    if (entry === undefined) return undefined;
    if (entry.isValid(now)) return entry;
    this.#lru.delete(key);
    return undefined;
  }

  /** Stores an entry; `encodedBytes` is its serialized size, used for the byte bound. */
  set(key: string, entry: MemoryEntry, encodedBytes: number): void {
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
