import { randomUUID } from 'node:crypto';
import type { RedisGateway } from '../resilience/redis-gateway.js';
import type { NamespaceCounters } from '../telemetry/stats.js';

/** How a call came out of {@link acquireOrWait}. */
export type LockOutcome =
  /** This process holds the lock: load, write, then `release()`. */
  | { readonly kind: 'acquired'; release(): Promise<void> }
  /** Another process produced the value while this one waited. */
  | { readonly kind: 'value'; readonly value: unknown }
  /** Another process holds the lock and the caller has a stale value to serve meanwhile. */
  | { readonly kind: 'stale' }
  /** The lock could not be used (Redis failing) or the holder never delivered: load without it. */
  | { readonly kind: 'load' };

type Acquired = Extract<LockOutcome, { kind: 'acquired' }>;

/** What {@link acquireOrWait} needs from its caller. */
export type LockRequest = {
  gateway: RedisGateway;
  counters: NamespaceCounters;
  lockKey: string;
  ttlMs: number;
  pollIntervalMs: number;
  /** Whether a stale value can be served instead of waiting. */
  hasStale: boolean;
  /** Reads the entry from Redis: the value when someone wrote it. */
  read(): Promise<{ found: boolean; value?: unknown; redisFailed?: boolean }>;
  /** Told once when the call starts waiting. */
  onWait(): void;
  /** Whether the cache is closing: stop waiting. */
  closed(): boolean;
};

/**
 * Stampede protection across processes: `SET lock token NX PX ttl`. The winner loads; the others
 * poll Redis for the value (every `pollIntervalMs`) until the lock's TTL has passed, then try to
 * take the lock themselves, so a holder that died delays the value by at most one lock TTL.
 * The lock is released with a compare-and-delete on the token, so a holder whose lock already
 * expired never releases someone else's.
 */
export async function acquireOrWait(request: LockRequest): Promise<LockOutcome> {
  const { gateway, counters, lockKey, ttlMs } = request;
  const token = randomUUID();
  const tryAcquire = () => gateway.run('lock', counters, (d) => d.setIfAbsent(lockKey, token, ttlMs));
  const acquired = (): Acquired => ({
    kind: 'acquired',
    release: async () => {
      await gateway
        .run('unlock', counters, (d) => d.deleteIfEquals(lockKey, token))
        .catch(() => {
          // The lock expires by itself; a failed release only delays the next loader by its TTL.
        });
    },
  });

  try {
    if (await tryAcquire()) return afterAcquire(request, acquired());
  } catch {
    return { kind: 'load' };
  }
  if (request.hasStale) return { kind: 'stale' };

  request.onWait();
  // Keep polling until a full lock TTL has passed since the holder could last have taken it.
  let deadline = Date.now() + ttlMs;
  while (!request.closed()) {
    await sleep(request.pollIntervalMs);
    const read = await request.read();
    if (read.found) return { kind: 'value', value: read.value };
    if (read.redisFailed) return { kind: 'load' };
    try {
      if (await tryAcquire()) return afterAcquire(request, acquired());
    } catch {
      return { kind: 'load' };
    }
    // The lock is held again (a new holder after a release without a value): wait for that one.
    if (Date.now() >= deadline) deadline = Date.now() + ttlMs;
  }
  return { kind: 'load' };
}

/** Someone may have written the value between our miss and our lock: check once before loading. */
async function afterAcquire(request: LockRequest, outcome: Acquired): Promise<LockOutcome> {
  const read = await request.read();
  if (!read.found) return outcome;
  await outcome.release();
  return { kind: 'value', value: read.value };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
