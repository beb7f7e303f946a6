import type { DriverWrite, StoredValue } from '../drivers/driver.js';

/** A write or delete that could not reach Redis, kept to replay. */
type PendingWrite =
  | { readonly kind: 'set'; readonly value: StoredValue; readonly expiresAt: number }
  | { readonly kind: 'delete' };

/**
 * Redis writes and deletes that failed while Redis was unavailable, the latest per key, bounded:
 * when full the oldest is dropped (and counted), since the entry's TTL bounds the harm of a
 * missing write. Replayed by the cache when Redis answers again, so the Redis copy and the
 * other instances (told over the bus) converge with what this instance served meanwhile.
 */
export class PendingWrites {
  readonly #byKey = new Map<string, PendingWrite>();
  readonly #max: number;
  /** Writes dropped because the queue was full. */
  dropped = 0;

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#byKey.size;
  }

  /** Keeps writes that failed; `ttlMs` of each is counted from now. */
  addWrites(writes: readonly DriverWrite[], now: number): void {
    for (const w of writes) this.#put(w.key, { kind: 'set', value: w.value, expiresAt: now + w.ttlMs });
  }

  addDeletes(keys: readonly string[]): void {
    for (const key of keys) this.#put(key, { kind: 'delete' });
  }

  /** A later successful write or delete of `key` supersedes what was kept. */
  settled(keys: readonly string[]): void {
    if (this.#byKey.size === 0) return;
    for (const key of keys) this.#byKey.delete(key);
  }

  /** Takes everything kept: the writes (TTLs shortened by the time waited, expired ones left out) and the deletes. */
  drain(now: number): { writes: DriverWrite[]; deletes: string[] } {
    const writes: DriverWrite[] = [];
    const deletes: string[] = [];
    for (const [key, pending] of this.#byKey) {
      if (pending.kind === 'delete') deletes.push(key);
      else if (pending.expiresAt > now)
        writes.push({ key, value: pending.value, ttlMs: pending.expiresAt - now });
    }
    this.#byKey.clear();
    return { writes, deletes };
  }

  #put(key: string, pending: PendingWrite): void {
    if (this.#max === 0) return;
    this.#byKey.delete(key); // re-insert: Map order is age order
    this.#byKey.set(key, pending);
    if (this.#byKey.size > this.#max) {
      const oldest = this.#byKey.keys().next().value as string;
      this.#byKey.delete(oldest);
      this.dropped++;
    }
  }
}
