import type { RedisDriver } from '../drivers/driver.js';
import type { Scope } from '../keys/scope.js';
import type { CircuitState } from '../resilience/circuit-breaker.js';
import type { CacheEventName, CacheEvents } from '../telemetry/events.js';
import { redactText } from '../telemetry/redact.js';
import type { NamespaceStats, TenantStats } from '../telemetry/stats.js';
import type { CacheCore } from './cache-core.js';
import { CacheScope } from './cache-scope.js';

/** A snapshot of the cache's counters. See `docs/observability.md`. */
export type CacheStats = ReturnType<CacheCore['stats']['snapshot']> & {
  memory: { enabled: boolean; entries: number; bytes: number };
  redis: {
    enabled: boolean;
    ready: boolean;
    circuit: CircuitState | 'disabled';
    /** `true` while Redis is switched off at run time with {@link Cache.setRedisEnabled}. */
    switchedOff: boolean;
    pendingCommands: number;
    /** Writes and deletes kept while Redis was unavailable, waiting to be replayed. */
    pendingWrites: number;
    /** The L1 coherence bus: `up`, `down`, or `off` (disabled, no memory tier, or a driver without pub/sub). */
    bus: 'up' | 'down' | 'off';
  };
  namespaces: Record<string, NamespaceStats>;
  /**
   * Counts per tenant scope (`leads/@org-1`), for the first `maxTenants` tenants used (empty when
   * `maxTenants` is 0, the default). Each namespace's figures above already include its tenants'.
   */
  tenants: Record<string, TenantStats>;
};

/** Result of {@link Cache.health}. */
export type CacheHealth = {
  /** `ok`: every configured tier works. `degraded`: serving without Redis (down, circuit open, disabled). */
  status: 'ok' | 'degraded';
  reason?: string;
  memory: { enabled: boolean; entries: number; bytes: number };
  redis: {
    enabled: boolean;
    driver?: string;
    /** Connection target, credentials redacted. */
    endpoint?: string;
    ready: boolean;
    circuit: CircuitState | 'disabled';
    /** `true` while Redis is switched off at run time with {@link Cache.setRedisEnabled}. */
    switchedOff?: boolean;
    /** Round trip of a PING, in milliseconds, when it answered. */
    pingMs?: number;
    error?: string;
  };
};

/**
 * The root view of a cache, returned by `createCache()`. It is a {@link CacheScope} for the root
 * scope, plus the lifecycle and observability of the whole cache.
 */
export class Cache extends CacheScope implements AsyncDisposable {
  readonly #driverOwned: boolean;

  /** @internal use `createCache()`. */
  constructor(core: CacheCore, root: Scope, driverOwned: boolean) {
    super(core, root);
    this.#driverOwned = driverOwned;
  }

  /** Subscribes to an event; returns a function that unsubscribes. */
  on<E extends CacheEventName>(event: E, listener: (payload: CacheEvents[E]) => void): () => void {
    return this.core.events.on(event, listener);
  }

  /**
   * The run-time kill switch. `false` stops every use of Redis at once — reads, writes, locks and
   * bus publishes fall back exactly as during an outage (reason `disabled`: memory tier, loaders,
   * writes kept for replay) — without closing the connection; `true` resumes, and what was kept is
   * replayed on the next Redis call. Idempotent; a no-op on a cache without Redis.
   * @example
   * cache.setRedisEnabled(false); // watch the fallback counters move
   */
  setRedisEnabled(enabled: boolean): void {
    const gateway = this.core.gateway;
    if (gateway === undefined || gateway.switchedOff === !enabled) return;
    gateway.setSwitchedOff(!enabled);
    this.core.options.logger.warn(
      { redisEnabled: enabled },
      enabled
        ? 'larder: Redis switched back on'
        : 'larder: Redis switched off: serving from memory and loaders',
    );
    this.core.events.emit('redis:switch', { enabled });
    if (enabled) this.core.onRedisSuccess(); // replay now rather than on the next call
  }

  /** Counters per namespace and in total, tier sizes and circuit state. Cheap: no I/O. */
  stats(): CacheStats {
    const { totals, namespaces, tenants } = this.core.stats.snapshot();
    const gateway = this.core.gateway;
    return {
      totals,
      namespaces,
      tenants,
      memory: {
        enabled: this.core.memory !== undefined,
        entries: this.core.memory?.entries ?? 0,
        bytes: this.core.memory?.bytes ?? 0,
      },
      redis: {
        enabled: gateway !== undefined,
        ready: gateway?.driver.isReady ?? false,
        circuit: gateway?.breaker.state ?? 'disabled',
        switchedOff: gateway?.switchedOff ?? false,
        pendingCommands: gateway?.pending ?? 0,
        pendingWrites: this.core.pendingWrites,
        bus: this.core.bus === undefined ? 'off' : this.core.bus.healthy ? 'up' : 'down',
      },
    };
  }

  /**
   * Checks the tiers: pings Redis, bounded by `redis.commandTimeout`. While the circuit is closed
   * the ping stays outside it (a health check never trips it); while it is open and due for a
   * probe, the ping is that probe, so an idle service recovers without waiting for traffic.
   */
  async health(): Promise<CacheHealth> {
    const memory = {
      enabled: this.core.memory !== undefined,
      entries: this.core.memory?.entries ?? 0,
      bytes: this.core.memory?.bytes ?? 0,
    };
    const gateway = this.core.gateway;
    if (gateway === undefined) {
      return {
        status: 'degraded',
        reason: 'Redis is not configured or disabled: memory tier only',
        memory,
        redis: { enabled: false, ready: false, circuit: 'disabled' },
      };
    }
    const redis: CacheHealth['redis'] = {
      enabled: true,
      driver: gateway.driver.name,
      endpoint: gateway.driver.endpoint,
      ready: gateway.driver.isReady,
      circuit: gateway.breaker.state,
    };
    if (gateway.switchedOff) {
      return {
        status: 'degraded',
        reason: 'Redis is switched off (setRedisEnabled(false)): memory tier and loaders only',
        memory,
        redis: { ...redis, switchedOff: true },
      };
    }
    const timeoutMs = this.core.options.redis === false ? 300 : this.core.options.redis.commandTimeoutMs;
    const startedAt = performance.now();
    const probe = gateway.breaker.state !== 'closed' && gateway.breaker.tryAcquire();
    try {
      await pingWithin(gateway.driver, timeoutMs);
      redis.pingMs = Math.round((performance.now() - startedAt) * 1000) / 1000;
      if (probe) gateway.breaker.onSuccess();
      this.core.onRedisSuccess(); // an idle service replays what failed without waiting for traffic
    } catch (error) {
      redis.error = redactText(error instanceof Error ? error.message : String(error));
      if (probe) gateway.breaker.onFailure();
    }
    redis.circuit = gateway.breaker.state;
    redis.ready = gateway.driver.isReady;
    const healthy = redis.pingMs !== undefined && redis.circuit === 'closed';
    return healthy
      ? { status: 'ok', memory, redis }
      : {
          status: 'degraded',
          reason:
            redis.error !== undefined
              ? `Redis unreachable: ${redis.error}`
              : `Redis circuit is ${redis.circuit}`,
          memory,
          redis,
        };
  }

  /**
   * Releases everything Larder created: the Redis client it opened (never one you passed in),
   * background reclamation, listeners and memory. Idempotent.
   */
  async close(): Promise<void> {
    if (this.core.closed) return;
    await this.core.close();
    if (this.#driverOwned) await this.core.gateway?.driver.close();
    this.core.events.removeAll();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function pingWithin(driver: RedisDriver, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no PING reply within ${timeoutMs} ms`)), timeoutMs);
    driver.ping().then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
