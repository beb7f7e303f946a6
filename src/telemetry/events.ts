import { EventEmitter } from 'node:events';
import type { CircuitState } from '../resilience/circuit-breaker.js';

/** Why a call was served without Redis. */
export type FallbackReason = 'circuit-open' | 'error' | 'timeout' | 'overloaded' | 'disabled';

/** Events a cache emits, with their payloads. Subscribe with `cache.on(name, listener)`. */
export interface CacheEvents {
  /** The circuit breaker changed state. */
  circuit: { from: CircuitState; to: CircuitState; failures: number };
  /** A Redis command failed or timed out. The message is redacted; `error` is the original. */
  'redis:error': { operation: string; namespace: string; message: string; error: unknown };
  /** A call was served from memory or the loader because Redis was not usable. */
  fallback: { operation: string; namespace: string; reason: FallbackReason };
  /** A stored value could not be decoded; it was treated as a miss. */
  'decode:error': { key: string; namespace: string; message: string };
  /** A loader passed to `getOrSet` failed. */
  'loader:error': { key: string; namespace: string; error: unknown };
  /**
   * A stale value was served: the loader failed (`error`), was slow or another process holds its
   * lock (`soft-timeout`), or Redis was slow (`redis-slow`). Later calls during `graceBackoff` are
   * counted in `staleServed` without an event each.
   */
  stale: { key: string; namespace: string; reason: 'error' | 'soft-timeout' | 'redis-slow' };
  /** Refresh-ahead started a background reload. */
  refresh: { key: string; namespace: string };
  /** A call waited for another process that holds the key's lock. */
  'lock:wait': { key: string; namespace: string; waitedMs: number; outcome: 'value' | 'stale' };
  /** The L1 coherence bus connected (`up`) or dropped (`down`); memory was flushed. */
  bus: { state: 'up' | 'down'; reason?: string };
  /** Writes, deletes and invalidations kept while Redis was unavailable were replayed. */
  replayed: { writes: number; deletes: number; bumps: number };
  /** Redis was switched off or back on at run time with `cache.setRedisEnabled()`. */
  'redis:switch': { enabled: boolean };
  /** Background reclamation after `clear()` finished a scope. */
  reclaimed: { scope: string; keys: number };
}

/** Name of a cache event. */
export type CacheEventName = keyof CacheEvents;

/** A small typed facade over `EventEmitter`; emitting with no listener costs one property read. */
export class CacheEventEmitter {
  readonly #emitter = new EventEmitter();
  readonly #onListenerError: (event: string, error: unknown) => void;

  /** @param onListenerError told when a listener throws; a listener's bug must not fail a cache call. */
  constructor(onListenerError: (event: string, error: unknown) => void) {
    this.#onListenerError = onListenerError;
  }

  /** Subscribes; returns a function that unsubscribes. */
  on<E extends CacheEventName>(event: E, listener: (payload: CacheEvents[E]) => void): () => void {
    this.#emitter.on(event, listener);
    return () => this.#emitter.off(event, listener);
  }

  /** Subscribes for one event. */
  once<E extends CacheEventName>(event: E, listener: (payload: CacheEvents[E]) => void): void {
    this.#emitter.once(event, listener);
  }

  /** @internal */
  emit<E extends CacheEventName>(event: E, payload: CacheEvents[E]): void {
    if (this.#emitter.listenerCount(event) === 0) return;
    try {
      this.#emitter.emit(event, payload);
    } catch (error) {
      this.#onListenerError(event, error);
    }
  }

  /** @internal */
  removeAll(): void {
    this.#emitter.removeAllListeners();
  }
}
