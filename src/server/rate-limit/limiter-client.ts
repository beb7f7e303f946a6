import { Redis, type RedisOptions } from 'ioredis';
import { type RedisConnection, redactUrl } from '../../index.js';

/** Longest wait for one rate-limit command before the memory limiter answers instead. */
export const LIMITER_COMMAND_TIMEOUT_MS = 250;
/** Longest wait for one connection attempt. */
const CONNECT_TIMEOUT_MS = 2000;
/** Upper bound of the reconnect back-off. */
const MAX_RECONNECT_DELAY_MS = 1000;

/** Options of {@link createLimiterClient}. */
export type LimiterClientOptions = {
  /** Called once when Redis becomes unreachable (message redacted), and once when it is back. */
  onDown?: (message: string) => void;
  onUp?: () => void;
};

/**
 * The ioredis client of the Redis rate limiters, set up to fail fast so that a request never
 * waits on Redis for its rate limit: the offline queue is off (commands reject at once while
 * disconnected), commands time out after {@link LIMITER_COMMAND_TIMEOUT_MS} (a stalled Redis), in-
 * flight commands are not resent after a reconnect, and it connects and reconnects in the
 * background forever, with capped back-off. Each failure sends the request to the memory limiter.
 */
export function createLimiterClient(connection: RedisConnection, options: LimiterClientOptions = {}): Redis {
  const settings: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: LIMITER_COMMAND_TIMEOUT_MS,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 10), MAX_RECONNECT_DELAY_MS),
    // The rate limiters' keys say which service they belong to; no client name needed.
  };
  const client =
    connection.url !== undefined
      ? new Redis(connection.url, settings)
      : new Redis({
          host: connection.host ?? '127.0.0.1',
          port: connection.port ?? 6379,
          db: connection.db ?? 0,
          username: connection.username,
          password: connection.password,
          ...(connection.tls === true ? { tls: {} } : {}),
          ...settings,
        });
  let down = false;
  client.on('error', (error: unknown) => {
    if (down) return;
    down = true;
    const message = error instanceof Error ? error.message : String(error);
    // Error messages can carry the URL; never its password.
    options.onDown?.(message.replace(/rediss?:\/\/\S+/g, (url) => redactUrl(url)));
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    options.onUp?.();
  });
  // connect() rejects when the first attempt fails, which 'error' reported; retries carry on.
  client.connect().catch(() => undefined);
  return client;
}
