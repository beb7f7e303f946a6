import { Redis } from '@upstash/redis';
import { redactUrl } from '../telemetry/redact.js';
import type { DriverWrite, RedisDriver } from './driver.js';

/** An Upstash Redis database, reached over its REST API. */
export type UpstashConnection = {
  /** The REST URL, e.g. `https://eu1-example-12345.upstash.io`. */
  url: string;
  /** The REST token, sent as `Authorization: Bearer <token>`. */
  token: string;
};

const DRIVER_NAME = 'upstash';

/**
 * Creates a driver on the Upstash REST API (`@upstash/redis`), for runtimes where a TCP connection
 * is not an option. Each call is one HTTPS request; batches use `/pipeline`, atomic batches
 * `/multi-exec`. There is no `subscribe` (REST has no long-lived subscriber connection), so
 * features that need pub/sub are off with it; `publish` works.
 *
 * `@upstash/redis` is configured so that Larder's rules hold: no retries (`retry: { retries: 0 }`),
 * values returned as the exact strings stored (`automaticDeserialization: false`; base64 response
 * encoding, its default, keeps any UTF-8 intact), one request per call (`enableAutoPipelining:
 * false`: its batches would run reads and writes of the same tick as two concurrent requests), and
 * no telemetry headers. There is no connection to lose: `isReady` turns false when a request fails
 * in transport and true again with the next answer. `close()` aborts requests in flight.
 * @example
 * createCache({ redis: { driver: createUpstashDriver({ url: env.UPSTASH_URL, token: env.UPSTASH_TOKEN }) } });
 */
export function createUpstashDriver(connection: UpstashConnection): RedisDriver {
  const aborter = new AbortController();
  let closed = false;
  let reachable = true;
  const redis = new Redis({
    url: connection.url,
    token: connection.token,
    // Not `retry: false`: @upstash/redis maps it to `attempts: 1` and loops `attempts + 1` times,
    // so `false` still retries a failed request once.
    retry: { retries: 0 },
    automaticDeserialization: false,
    enableAutoPipelining: false,
    enableTelemetry: false,
    // A function, not the signal itself: with a plain signal an aborted request resolves with the
    // result "Aborted"; with a function it rejects.
    signal: () => aborter.signal,
  });

  async function call<T>(command: () => Promise<T>): Promise<T> {
    if (closed) throw new Error('The Upstash driver was closed');
    try {
      const result = await command();
      reachable = true;
      return result;
    } catch (error) {
      throw cleaned(error, () => {
        reachable = false;
      });
    }
  }

  return {
    name: DRIVER_NAME,
    endpoint: redactUrl(connection.url),
    get isReady() {
      return !closed && reachable;
    },
    async mget(keys) {
      if (keys.length === 0) return [];
      const replies = await call(() => redis.mget<Array<string | null>>([...keys]));
      return replies.map((reply) => (reply === null || reply === undefined ? null : String(reply)));
    },
    async set(key, value, ttlMs) {
      await call(() => redis.set(key, value, { px: ttlMs }));
    },
    async setMany(writes: readonly DriverWrite[], atomic) {
      if (writes.length === 0) return;
      // exec() throws on the first failed command (`Command n [ set ] failed: …`).
      const batch = atomic ? redis.multi() : redis.pipeline();
      for (const w of writes) batch.set(w.key, w.value, { px: w.ttlMs });
      await call(() => batch.exec());
    },
    async unlink(keys) {
      if (keys.length === 0) return 0;
      return Number(await call(() => redis.unlink(...keys)));
    },
    async incrBy(keys, increment) {
      if (keys.length === 0) return [];
      if (keys.length === 1) return [Number(await call(() => redis.incrby(keys[0] as string, increment)))];
      const batch = redis.pipeline();
      for (const key of keys) batch.incrby(key, increment);
      const replies = await call(() => batch.exec<number[]>());
      return replies.map(Number);
    },
    async setIfAbsent(key, value, ttlMs) {
      return (await call(() => redis.set(key, value, { nx: true, px: ttlMs }))) !== null;
    },
    async deleteIfEquals(key, value) {
      return Number(await call(() => redis.eval(DELETE_IF_EQUALS, [key], [value]))) === 1;
    },
    async publish(channel, message) {
      await call(() => redis.publish(channel, message));
    },
    async scan(cursor, match, count) {
      const [next, keys] = (await call(() => redis.scan(cursor, { match, count }))) as [
        string | number,
        unknown[],
      ];
      return { cursor: String(next), keys: keys.map(String) };
    },
    async ping() {
      await call(() => redis.ping());
    },
    async close() {
      if (closed) return;
      closed = true;
      aborter.abort(new Error('The Upstash driver was closed'));
    },
  };
}

// Compare-and-delete, so a lock is released only by its holder (the token is the value).
const DELETE_IF_EQUALS =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/**
 * The error to reject with. @upstash/redis appends `, command was: [...]` to server errors: the
 * whole command, values included, which would end up in logs; it is cut off. A failure that is not
 * an answer from the server (network, abort) marks the driver unreachable.
 */
function cleaned(error: unknown, unreachable: () => void): Error {
  if (!(error instanceof Error)) return new Error(String(error));
  if (error.name !== 'UpstashError' && error.name !== 'UpstashJSONParseError') {
    unreachable();
    return error;
  }
  const cut = error.message.indexOf(', command was: ');
  if (cut === -1) return error;
  const clean = new Error(error.message.slice(0, cut));
  clean.name = error.name;
  return clean;
}
