import { escapeSegment } from '../keys/escape.js';
import type { Scope } from '../keys/scope.js';

/**
 * The last known value of one version counter in Redis (a scope's or a tag's).
 *
 * An entry records the versions of its scope chain and tags when written, and is valid only while
 * every one is *equal* to the current value. Equality, not `>=`, so that a counter that went
 * backwards (Redis restarted without persistence) also invalidates, and a counter changed by a bump
 * not yet sent to Redis (a negative local marker) matches nothing stored there.
 */
export class VersionCell {
  /** Current version: the counter's value in Redis, or a negative marker while a bump is pending. */
  value = 0;
  /** Whether `value` was ever read from Redis (or set by a bump). */
  known = false;
  /** A bump made while Redis was unavailable, to replay when it returns. */
  pendingBump = false;

  constructor(readonly key: string) {}
}

/**
 * Version cells by Redis key, bounded, least recently used first out. An evicted cell is poisoned
 * (`NaN`), so memory-tier entries that still point to it become misses rather than trusting a
 * forgotten version.
 *
 * A Map in recency order rather than lru-cache: lru-cache allocates its slot arrays for `max` up
 * front (1.6 MB for 100,000 cells, in every cache), while a process usually tracks a few hundred
 * cells; cells are looked up per scope and per tag, off the memory-hit path.
 */
export class VersionRegistry {
  readonly #cells = new Map<string, VersionCell>();
  readonly #maxCells: number;
  readonly #scopeChains = new WeakMap<Scope, VersionCell[]>();
  readonly #snapshots = new WeakMap<readonly VersionCell[], number[]>();
  // Each local bump gets a distinct negative marker, so it equals no version recorded in Redis.
  #nextLocalMarker = -1;

  constructor(maxCells: number) {
    this.#maxCells = maxCells;
  }

  /**
   * The current values of `cells`, as an array shared by every caller while they do not change:
   * memory entries of one scope then share one versions array instead of holding a copy each.
   * Callers must not modify it.
   */
  snapshot(cells: readonly VersionCell[]): number[] {
    const last = this.#snapshots.get(cells);
    if (
      last !== undefined &&
      last.length === cells.length &&
      last.every((v, i) => v === (cells[i] as VersionCell).value)
    ) {
      return last;
    }
    const fresh = cells.map((c) => c.value);
    this.#snapshots.set(cells, fresh);
    return fresh;
  }

  /** The cells of a scope's chain, root first; cached per scope object. */
  scopeChain(scope: Scope): VersionCell[] {
    let cells = this.#scopeChains.get(scope);
    if (cells === undefined || cells.some((c) => Number.isNaN(c.value))) {
      cells = scope.chain.map((s) => this.#cell(s.versionKey));
      this.#scopeChains.set(scope, cells);
    }
    return cells;
  }

  /** The cell of a tag within a scope. */
  tag(scope: Scope, tag: string): VersionCell {
    return this.#cell(`${scope.tagPrefix}${escapeSegment(tag)}`);
  }

  /** Applies a value read from Redis (`null`: the counter does not exist, version 0). */
  observe(cell: VersionCell, remote: string | null): void {
    if (cell.pendingBump) return; // the local marker stays until the bump is replayed
    cell.value = remote === null ? 0 : Number(remote);
    cell.known = true;
  }

  /** Applies a value announced on the bus, to a cell this process already tracks. */
  observeIfKnown(key: string, value: number): void {
    const cell = this.#cells.get(key);
    if (cell !== undefined && !cell.pendingBump) {
      cell.value = value;
      cell.known = true;
    }
  }

  /**
   * Bumps a cell in this process only: local entries stop matching at once. `pending` marks a bump
   * that failed to reach Redis and must be replayed there (memory-only caches pass `false`).
   */
  bumpLocally(cell: VersionCell, pending: boolean): void {
    cell.value = this.#nextLocalMarker--;
    cell.known = true;
    cell.pendingBump = pending;
  }

  /** Applies the value Redis returned for a bump. */
  bumped(cell: VersionCell, value: number): void {
    cell.value = value;
    cell.known = true;
    cell.pendingBump = false;
  }

  /** Cells with a bump that has not reached Redis yet. */
  pending(): VersionCell[] {
    const out: VersionCell[] = [];
    for (const cell of this.#cells.values()) if (cell.pendingBump) out.push(cell);
    return out;
  }

  #cell(key: string): VersionCell {
    let cell = this.#cells.get(key);
    if (cell !== undefined) {
      // Most recently used last.
      this.#cells.delete(key);
      this.#cells.set(key, cell);
      return cell;
    }
    cell = new VersionCell(key);
    this.#cells.set(key, cell);
    if (this.#cells.size > this.#maxCells) {
      const [oldestKey, oldest] = this.#cells.entries().next().value as [string, VersionCell];
      this.#cells.delete(oldestKey);
      oldest.value = Number.NaN;
    }
    return cell;
  }

  /** Forgets every cell; entries still pointing to one become misses. */
  clear(): void {
    for (const cell of this.#cells.values()) cell.value = Number.NaN;
    this.#cells.clear();
  }
}
