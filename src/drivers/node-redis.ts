import { createClient, RESP_TYPES, type RedisClientType } from 'redis';
import { redactText, redactUrl } from '../telemetry/redact.js';
import { coalesceMget } from './coalesce-mget.js';
import type { DriverWrite, RedisDriver } from './driver.js';

/** A node-redis client of any module/script/RESP configuration. */
// node-redis clients are generic over modules and scripts; Larder uses only core commands.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NodeRedisClient = RedisClientType<any, any, any, any, any>;

/** Where to connect when Larder creates the client. */
export type RedisConnection = {
  /** `redis://[user:pass@]host:port/db` or `rediss://` for TLS. Wins over the fields below. */
  url?: string;
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  db?: number;
  tls?: boolean;
};

/** Options of the node-redis driver. */
export type NodeRedisDriverOptions = {
  /** Fail the connection attempt after this long. @default 2000 */
  connectTimeoutMs?: number;
  /** Upper bound of the reconnect back-off. @default 500 */
  maxReconnectDelayMs?: number;
  /** Called with connection errors (already redacted); node-redis requires an error listener. */
  onError?: (message: string, error: unknown) => void;
};

const DRIVER_NAME = 'node-redis';

/**
 * Creates a driver on a new node-redis client that Larder owns (and closes).
 *
 * The client is set up for a cache that must fail fast: the offline queue is off, so commands
 * issued while disconnected reject at once instead of piling up; reconnection retries forever with
 * capped, jittered back-off; connecting happens in the background, so a cache can start while
 * Redis is down. node-redis has no default command timeout: the gateway applies Larder's own.
 */
export function createNodeRedisDriver(
  connection: RedisConnection,
  options: NodeRedisDriverOptions = {},
): RedisDriver {
  const { connectTimeoutMs = 2000, maxReconnectDelayMs = 500, onError } = options;
  const url = connection.url ?? buildUrl(connection);
  const client: NodeRedisClient = createClient({
    url,
    disableOfflineQueue: true,
    // node-redis arms its own 5 s timeout (an AbortSignal) on every command by default; the gateway
    // already bounds each call with Larder's timeout, and the duplicate costs ~15% CPU on hits.
    commandOptions: { timeout: 0 },
    socket: {
      connectTimeout: connectTimeoutMs,
      // Capped exponential back-off with jitter; never gives up: the circuit breaker decides use.
      reconnectStrategy: (retries: number) =>
        Math.min(25 * 2 ** retries, maxReconnectDelayMs) * (0.5 + Math.random() / 2),
    },
  });
  client.on('error', (error: unknown) =>
    onError?.(redactText(String((error as Error)?.message ?? error)), error),
  );
  // connect() rejects only if the first attempt fails with reconnection disabled; ours retries.
  client
    .connect()
    .catch((error: unknown) => onError?.(redactText(String((error as Error)?.message ?? error)), error));
  return wrapNodeRedisClient(client, { owned: true, endpoint: redactUrl(url) });
}

/**
 * Wraps a node-redis client the caller created and owns: Larder never connects or closes it.
 * For Larder's fail-fast behaviour create it with `disableOfflineQueue: true`.
 */
export function nodeRedisDriverFromClient(client: NodeRedisClient): RedisDriver {
  return wrapNodeRedisClient(client, { owned: false, endpoint: 'external client' });
}

function wrapNodeRedisClient(
  client: NodeRedisClient,
  { owned, endpoint }: { owned: boolean; endpoint: string },
): RedisDriver {
  // A view of the same connection that returns bulk strings as Buffers, made on first binary read.
  let binaryClient: ReturnType<NodeRedisClient['withTypeMapping']> | undefined;
  return {
    name: DRIVER_NAME,
    endpoint,
    get isReady() {
      return client.isReady;
    },
    mget: coalesceMget<string | null>(async (keys) => {
      if (keys.length === 0) return [];
      const replies = (await client.mGet([...keys])) as unknown[];
      return replies.map(asString);
    }),
    mgetBuffers: coalesceMget<Buffer | null>(async (keys) => {
      if (keys.length === 0) return [];
      binaryClient ??= client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
      const replies = (await binaryClient.mGet([...keys])) as unknown[];
      return replies.map((reply) => (reply === null || reply === undefined ? null : (reply as Buffer)));
    }),
    async set(key, value, ttlMs) {
      await client.set(key, value, { expiration: { type: 'PX', value: ttlMs } });
    },
    async setMany(writes: readonly DriverWrite[], atomic) {
      if (writes.length === 0) return;
      const multi = client.multi();
      for (const w of writes) multi.set(w.key, w.value, { expiration: { type: 'PX', value: w.ttlMs } });
      // Both forms reject with MultiErrorReply when any command in the batch failed.
      if (atomic) await multi.exec();
      else await multi.execAsPipeline();
    },
    async unlink(keys) {
      if (keys.length === 0) return 0;
      return Number(await client.unlink([...keys]));
    },
    async incrBy(keys, increment) {
      if (keys.length === 1) return [Number(await client.incrBy(keys[0] as string, increment))];
      const multi = client.multi();
      for (const key of keys) multi.incrBy(key, increment);
      const replies = (await multi.execAsPipeline()) as unknown[];
      return replies.map(Number);
    },
    async setIfAbsent(key, value, ttlMs) {
      const reply = await client.set(key, value, {
        condition: 'NX',
        expiration: { type: 'PX', value: ttlMs },
      });
      return reply !== null;
    },
    async deleteIfEquals(key, value) {
      return Number(await client.eval(DELETE_IF_EQUALS, { keys: [key], arguments: [value] })) === 1;
    },
    async publish(channel, message) {
      await client.publish(channel, message);
    },
    subscribe(channel, listener) {
      // A subscribed connection can run nothing else: it gets its own, closed with the subscription.
      const subscriber = client.duplicate();
      let subscribed = false;
      let closed = false;
      subscriber.on('error', (error: unknown) => {
        if (!closed) listener.down(redactText(String((error as Error)?.message ?? error)));
      });
      // node-redis re-subscribes by itself after a reconnection, then emits 'ready' again.
      subscriber.on('ready', () => {
        if (subscribed && !closed) listener.up();
      });
      // connect() keeps retrying until Redis answers (or the subscription is closed).
      void (async () => {
        try {
          await subscriber.connect();
          await subscriber.subscribe(channel, (message: string) => listener.message(message));
          subscribed = true;
          if (!closed) listener.up();
        } catch (error) {
          if (!closed) listener.down(redactText(String((error as Error)?.message ?? error)));
        }
      })();
      return {
        async close() {
          closed = true;
          if (subscriber.isOpen) subscriber.destroy();
        },
      };
    },
    async scan(cursor, match, count) {
      const reply = await client.scan(cursor, { MATCH: match, COUNT: count });
      return { cursor: String(reply.cursor), keys: reply.keys.map(String) };
    },
    async ping() {
      await client.ping();
    },
    async close() {
      if (!owned) return;
      // destroy() drops pending commands at once; close() would wait for replies that may never come.
      if (client.isOpen) client.destroy();
    },
  };
}

// Compare-and-delete, so a lock is released only by its holder (the token is the value).
const DELETE_IF_EQUALS =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

function asString(reply: unknown): string | null {
  if (reply === null || reply === undefined) return null;
  return typeof reply === 'string' ? reply : String(reply);
}

function buildUrl(c: RedisConnection): string {
  const scheme = c.tls ? 'rediss' : 'redis';
  const auth =
    c.password !== undefined && c.password !== ''
      ? `${encodeURIComponent(c.username ?? '')}:${encodeURIComponent(c.password)}@`
      : '';
  return `${scheme}://${auth}${c.host ?? '127.0.0.1'}:${c.port ?? 6379}/${c.db ?? 0}`;
}
