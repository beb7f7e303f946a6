import { createHash } from 'node:crypto';
import type { Session } from 'fastify';
import type { CacheScope } from '../../index.js';

/** How long a session lives after its last save: each request that uses it saves it again. */
export const SESSION_TTL_MS = 24 * 60 * 60 * 1000;

/** The Larder namespace the sessions live in. */
export const SESSION_NAMESPACE = 'sessions';

/** Options of {@link LarderSessionStore}. */
export type LarderSessionStoreOptions = {
  /** Time to live of a session after each save or touch. @default {@link SESSION_TTL_MS} (24 h) */
  ttlMs?: number;
};

type Callback = (error?: unknown) => void;
type GetCallback = (error: unknown, session?: Session | null) => void;

/**
 * A session store for `@fastify/session` (the express-session store interface: `get`, `set`,
 * `destroy`, plus `touch`) on the Larder namespace `sessions`.
 *
 * - Each session is one entry whose key is the SHA-256 of the session id: a Redis dump or a key
 *   listing never shows an id a cookie could be forged from.
 * - Values are the session's JSON (the cookie's dates as ISO strings), with a TTL of 24 h renewed by
 *   every `set` and `touch` (rolling sessions: activity extends them) and no grace period, so an
 *   expired session is never served stale.
 * - `destroy` deletes the entry in both tiers and, over Larder's bus, in the memory of every other
 *   instance: a revoked cookie stops working everywhere.
 * - While Redis is unreachable, Larder keeps serving and writing sessions from the memory tier and
 *   replays the writes when Redis is back, so logging in and out still works on one instance.
 */
export class LarderSessionStore {
  readonly #scope: CacheScope;
  readonly #ttlMs: number;

  /** @param cache the cache (any scope) the `sessions` namespace is created under. */
  constructor(cache: CacheScope, options: LarderSessionStoreOptions = {}) {
    this.#scope = cache.namespace(SESSION_NAMESPACE);
    this.#ttlMs = options.ttlMs ?? SESSION_TTL_MS;
  }

  /** Time to live of a session after each save, in milliseconds. */
  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** The stored session of `sessionId`, or `undefined` when there is none (never was, expired, revoked). */
  async load(sessionId: string): Promise<Session | undefined> {
    return (await this.#scope.get<Session>(keyOf(sessionId))) ?? undefined;
  }

  /** Stores (or replaces) a session and restarts its TTL. */
  async save(sessionId: string, session: Session): Promise<void> {
    await this.#scope.set(keyOf(sessionId), toJson(session), { ttl: this.#ttlMs, grace: 0 });
  }

  /** Removes a session on every instance. Removing one that does not exist is not an error. */
  async revoke(sessionId: string): Promise<void> {
    await this.#scope.delete(keyOf(sessionId));
  }

  /** express-session `get`: the session, or `null` when there is none. */
  get(sessionId: string, callback: GetCallback): void {
    this.load(sessionId).then(
      (session) => callback(null, session ?? null),
      (error: unknown) => callback(error),
    );
  }

  /** express-session `set`: stores the session and restarts its TTL. */
  set(sessionId: string, session: Session, callback: Callback): void {
    this.save(sessionId, session).then(() => callback(), callback);
  }

  /** express-session `destroy`: revokes the session. */
  destroy(sessionId: string, callback: Callback): void {
    this.revoke(sessionId).then(() => callback(), callback);
  }

  /** express-session `touch`: extends the session's life without changing it. */
  touch(sessionId: string, session: Session, callback: Callback): void {
    this.save(sessionId, session).then(() => callback(), callback);
  }
}

/** The cache key of a session id. */
function keyOf(sessionId: string): string {
  return createHash('sha256').update(sessionId).digest('base64url');
}

/** A plain JSON copy: the session object carries a class instance (its cookie) and symbols. */
function toJson(session: Session): Session {
  return JSON.parse(JSON.stringify(session)) as Session;
}
