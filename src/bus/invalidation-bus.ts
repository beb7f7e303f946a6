import { randomUUID } from 'node:crypto';
import type { RedisDriver, Subscription } from '../drivers/driver.js';
import type { Logger } from '../telemetry/logger.js';

/**
 * A bus message: keys whose memory copies must be dropped, and version counters with their new
 * values. `i` is the sender, so an instance ignores its own messages.
 */
type BusMessage = { i: string; k?: string[]; v?: Array<[string, number]> };

/** What the bus tells the cache. */
export type BusHandlers = {
  /** Another instance wrote or deleted these keys. */
  keys(keys: readonly string[]): void;
  /** Another instance bumped these version counters to these values. */
  versions(pairs: ReadonlyArray<readonly [string, number]>): void;
  /** The subscription came up (again) or dropped; `missedMessages` when it is up after a drop. */
  state(state: 'up' | 'down', detail: { reason?: string; missedMessages: boolean }): void;
};

/**
 * L1 coherence over Redis pub/sub: one channel per key prefix, one subscriber connection per cache.
 * Publishing rides on the cache's own writes (see `CacheCore`), so it needs no extra round trip.
 */
export class InvalidationBus {
  readonly channel: string;
  readonly #instanceId = randomUUID();
  // Every message this instance sends starts so; its own come back and are dropped unparsed.
  readonly #ownPrefix = `{"i":"${this.#instanceId}"`;
  readonly #handlers: BusHandlers;
  readonly #logger: Logger;
  #subscription: Subscription | undefined;
  #healthy = false;
  #wasDown = false;

  constructor(channel: string, handlers: BusHandlers, logger: Logger) {
    this.channel = channel;
    this.#handlers = handlers;
    this.#logger = logger;
  }

  /** Whether the subscription is up now: only then may memory entries be trusted for long. */
  get healthy(): boolean {
    return this.#healthy;
  }

  /** Subscribes in the background (a driver without pub/sub leaves the bus down for good). */
  start(driver: RedisDriver): boolean {
    if (driver.subscribe === undefined) return false;
    this.#subscription = driver.subscribe(this.channel, {
      message: (payload) => this.#receive(payload),
      up: () => {
        const missedMessages = this.#wasDown;
        this.#healthy = true;
        this.#handlers.state('up', { missedMessages });
      },
      down: (reason) => {
        if (!this.#healthy && this.#wasDown) return; // already down: one report per outage
        this.#healthy = false;
        this.#wasDown = true;
        this.#handlers.state('down', { reason, missedMessages: true });
      },
    });
    return true;
  }

  /** The payload announcing changed keys and bumped versions; `undefined` when there is nothing to say. */
  message(
    keys: readonly string[],
    versions: ReadonlyArray<readonly [string, number]> = [],
  ): string | undefined {
    if (keys.length === 0 && versions.length === 0) return undefined;
    const message: BusMessage = { i: this.#instanceId };
    if (keys.length > 0) message.k = [...keys];
    if (versions.length > 0) message.v = versions.map(([k, v]) => [k, v]);
    return JSON.stringify(message);
  }

  async close(): Promise<void> {
    this.#healthy = false;
    await this.#subscription?.close();
    this.#subscription = undefined;
  }

  #receive(payload: string): void {
    if (payload.startsWith(this.#ownPrefix)) return;
    let message: BusMessage;
    try {
      message = JSON.parse(payload) as BusMessage;
    } catch {
      this.#logger.warn({ channel: this.channel }, 'larder: ignored a bus message that is not JSON');
      return;
    }
    if (message.i === this.#instanceId) return;
    if (Array.isArray(message.k)) this.#handlers.keys(message.k.filter((k) => typeof k === 'string'));
    if (Array.isArray(message.v)) {
      this.#handlers.versions(
        message.v.filter(
          (p): p is [string, number] =>
            Array.isArray(p) && typeof p[0] === 'string' && Number.isSafeInteger(p[1]),
        ),
      );
    }
  }
}
