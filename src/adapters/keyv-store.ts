import { EventEmitter } from 'node:events';
import { CacheScope, type Duration, ErrorCode, LarderError } from '../index.js';

/** Options of {@link LarderKeyvStore}. */
export type LarderKeyvStoreOptions = {
  /**
   * TTL of writes that Keyv sends without one (Keyv without a `ttl` option, or `ttl` 0). Larder
   * entries always expire: there is no "forever".
   * @default the cache's `defaultTtl`
   * @example '1h'
   */
  defaultTtl?: Duration;
};

/** One entry of {@link LarderKeyvStore.setMany}, as Keyv sends it: `ttl` in milliseconds. */
export type KeyvStoreEntry = { key: string; value: unknown; ttl?: number };

/**
 * A Keyv storage adapter on a Larder scope, for code written against Keyv or cache-manager 7:
 * `new Keyv({ store: new LarderKeyvStore(cache.namespace('sessions')) })`.
 *
 * Implements the `KeyvStoreAdapter` contract of Keyv 5 (structurally: Larder does not depend on
 * Keyv). Values are whatever Keyv hands over: its serialized string by default, or `{ value,
 * expires }` objects when Keyv's `serialize`/`deserialize` are unset, which must then be JSON.
 *
 * - Keyv's `namespace` (default `'keyv'`) becomes a Larder namespace inside the scope, so `clear()`
 *   empties only that Keyv namespace, in O(1) (one version bump, keys reclaimed in the background).
 *   Keys are stored as Keyv sends them, with its `namespace:` prefix.
 * - `ttl` is in milliseconds; none (or 0) means {@link LarderKeyvStoreOptions.defaultTtl}.
 * - Input errors (an empty or too long key, a value that is not JSON, a bad TTL) reject with a
 *   `LarderError`; the store never emits `'error'` itself. Keyv 5 turns a rejected `set`, `delete`
 *   or `clear` into an `'error'` event (and `false` where it returns a boolean), swallows a
 *   rejected `get`, and lets `has`/`getMany` reject; `throwOnErrors: true` makes them all throw.
 * - Redis failures never reject: Larder serves from its memory tier and reports them through the
 *   cache's `fallback` and `redis:error` events.
 * - `disconnect()` leaves the cache open: whoever created it closes it.
 * - There is no `iterator()`: Larder has no public listing of a scope's keys.
 */
export class LarderKeyvStore extends EventEmitter {
  /** What Keyv reads as the adapter's options. */
  readonly opts: Readonly<{ dialect: 'larder'; scope: string } & LarderKeyvStoreOptions>;
  readonly #scope: CacheScope;
  readonly #defaultTtl: Duration | undefined;
  #namespace: string | undefined;
  #target: CacheScope;

  /**
   * @param scope where entries go: a cache, a namespace, a tenant, or any nesting of them.
   * @throws LarderError `E_INVALID_OPTIONS` when `scope` is not one. A bad `defaultTtl` is
   * reported (`E_INVALID_TTL`) by the first write that uses it.
   */
  constructor(scope: CacheScope, options: LarderKeyvStoreOptions = {}) {
    super();
    if (!(scope instanceof CacheScope)) {
      throw new LarderError(
        ErrorCode.InvalidOptions,
        'Expected the scope of a LarderKeyvStore to be a cache or a scoped view of one (createCache(), namespace(), forTenant())',
        { option: 'scope' },
      );
    }
    this.#scope = scope;
    this.#target = scope;
    this.#defaultTtl = options.defaultTtl;
    this.opts = { dialect: 'larder', scope: scope.path, ...options };
  }

  /**
   * Keyv's namespace, assigned by Keyv when the store is given to it. Each namespace is a Larder
   * namespace of the store's scope; `undefined` (Keyv's `namespace: undefined`) is the scope itself.
   * @throws LarderError `E_INVALID_NAMESPACE` for a non-string.
   */
  get namespace(): string | undefined {
    return this.#namespace;
  }

  set namespace(name: string | undefined) {
    // Keyv's own "no namespace" is undefined, but an empty string must not reach scope.namespace().
    this.#target = name === undefined || name === '' ? this.#scope : this.#scope.namespace(name);
    this.#namespace = name;
  }

  /** The stored value, or `undefined` on a miss. */
  get<Value = unknown>(key: string): Promise<Value | undefined> {
    return this.#target.get<Value>(key);
  }

  /** Values in order, `undefined` for misses: memory first, then one round trip. */
  getMany<Value = unknown>(keys: string[]): Promise<Array<Value | undefined>> {
    return this.#getMany<Value>(keys);
  }

  /** Stores a value for `ttl` milliseconds (none or 0: `defaultTtl`). Resolves `true`. */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    await this.#target.set(key, value, { ttl: this.#ttl(ttl) });
    return true;
  }

  /**
   * Stores several entries in one round trip. Resolves one `true` per entry (Keyv 5's `setMany`
   * returns what the store resolves). All or nothing on input errors: nothing is written when one
   * entry is invalid.
   */
  async setMany(entries: KeyvStoreEntry[]): Promise<boolean[]> {
    await this.#target.setMany(entries.map((e) => ({ key: e.key, value: e.value, ttl: this.#ttl(e.ttl) })));
    return entries.map(() => true);
  }

  /** Whether a live entry exists. */
  has(key: string): Promise<boolean> {
    return this.#target.has(key);
  }

  /** {@link has} for several keys, in one round trip. */
  async hasMany(keys: string[]): Promise<boolean[]> {
    return (await this.#getMany(keys)).map((v) => v !== undefined);
  }

  /** Removes an entry; resolves whether one was there. */
  async delete(key: string): Promise<boolean> {
    // Larder's delete() does not say what it removed, so ask first. The delete is sent even on a
    // miss: with Redis failing, has() reports a miss for an entry Redis may still hold.
    const existed = await this.#target.has(key);
    await this.#target.delete(key);
    return existed;
  }

  /** Removes entries; resolves whether any was there. */
  async deleteMany(keys: string[]): Promise<boolean> {
    if (keys.length === 0) return false;
    const existed = (await this.#getMany(keys)).some((v) => v !== undefined);
    await this.#target.delete(...keys);
    return existed;
  }

  /** Empties this store's namespace (and nothing else) in O(1). */
  async clear(): Promise<void> {
    await this.#target.clear();
  }

  /** Resolves at once: the cache belongs to whoever created it, who closes it. */
  async disconnect(): Promise<void> {}

  async #getMany<Value>(keys: string[]): Promise<Array<Value | undefined>> {
    const values = await this.#target.getMany<Value>(keys);
    // Larder leaves misses as holes of a sparse array; Keyv walks the result with for...in and
    // map() keeps holes, so a miss would vanish and shift the values after it. Make them undefined.
    return Array.from(values);
  }

  #ttl(ttl: number | undefined): Duration | undefined {
    // Keyv sends undefined, or 0 when its own ttl is 0, for "no expiry".
    return ttl === undefined || ttl === 0 ? this.#defaultTtl : ttl;
  }
}
