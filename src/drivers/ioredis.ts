import { ErrorCode, LarderError } from '../errors.js';
import { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { redactText, redactUrl } from '../telemetry/redact.js';
import { coalesceMget } from './coalesce-mget.js';
import { pipelinePerTick } from './pipeline-per-tick.js';
import type { DriverWrite, RedisDriver, Subscription, SubscriptionListener } from './driver.js';
import type { RedisConnection } from './node-redis.js';

/** An ioredis client: a standalone or Sentinel-managed `Redis`, or a `Cluster`. */
export type IoredisClient = Redis | Cluster;

/** A Redis Cluster, reached through any of its nodes. */
export type IoredisClusterConnection = {
  /** Startup nodes: `{ host, port }`, a port, or a `redis://host:port` URL. At least one. */
  cluster: ClusterNode[];
  /**
   * ioredis `Cluster` options (`redisOptions` carries credentials and TLS for every node). The
   * fail-fast settings listed on {@link createIoredisDriver} take precedence over these.
   */
  options?: ClusterOptions;
};

/** A primary found through Redis Sentinel. */
export type IoredisSentinelConnection = {
  sentinels: ReadonlyArray<{ host: string; port: number }>;
  /** Name of the monitored primary (the master group). */
  name: string;
  username?: string;
  password?: string;
  sentinelUsername?: string;
  sentinelPassword?: string;
  db?: number;
  /** TLS to the primary and the sentinels. */
  tls?: boolean;
};

/** Where to connect when Larder creates the ioredis client. */
export type IoredisConnection = RedisConnection | IoredisClusterConnection | IoredisSentinelConnection;

/** Options of the ioredis driver. */
export type IoredisDriverOptions = {
  /** Fail a connection attempt after this long. @default 2000 */
  connectTimeoutMs?: number;
  /** Upper bound of the reconnect back-off (jittered). @default 500 */
  maxReconnectDelayMs?: number;
  /** Called with connection errors (already redacted); ioredis prints them to stderr without a listener. */
  onError?: (message: string, error: unknown) => void;
};

const DRIVER_NAME = 'ioredis';

/**
 * Creates a driver on a new ioredis client that Larder owns (and closes): standalone (a
 * {@link RedisConnection}), Redis Cluster (`{ cluster: nodes }`) or Sentinel (`{ sentinels, name }`).
 *
 * The client is set up to fail fast, never to wait: calls reject at once unless the client is
 * ready, `enableOfflineQueue: false` (standalone; see the comment in the code for a cluster),
 * `maxRetriesPerRequest: 0` and
 * `autoResendUnfulfilledCommands: false` (commands in flight when the connection drops reject
 * instead of being sent again), `lazyConnect` with the connection made in the background (a cache
 * can start while Redis is down), reconnection forever with capped, jittered back-off, and no
 * `commandTimeout`: the gateway applies Larder's own. On a cluster, failover and CLUSTERDOWN
 * retries are off too (`retryDelayOnFailover: 0`, `retryDelayOnClusterDown: 0`); MOVED/ASK
 * redirections still happen, as they are how a cluster routes, not retries.
 *
 * Multi-key calls are split by hash slot on a cluster and run per slot in parallel, except
 * `setMany(writes, true)`, which rejects when the keys span slots (a transaction cannot).
 * @example
 * createCache({ redis: { driver: createIoredisDriver({ cluster: [{ host: 'redis-0', port: 6379 }] }) } });
 */
export function createIoredisDriver(
  connection: IoredisConnection,
  options: IoredisDriverOptions = {},
): RedisDriver {
  const { connectTimeoutMs = 2000, maxReconnectDelayMs = 500, onError } = options;
  const report = (error: unknown) => onError?.(redactText(messageOf(error)), error);
  const retryStrategy = backoff(maxReconnectDelayMs);
  // Every connection: commands in flight when it drops are rejected, never sent again.
  const perConnection = {
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: connectTimeoutMs,
  };
  const nodeOptions: RedisOptions = {
    ...perConnection,
    lazyConnect: true,
    enableOfflineQueue: false,
    retryStrategy,
  };
  let client: IoredisClient;
  let endpoint: string;
  if ('cluster' in connection) {
    const given = connection.options ?? {};
    client = new Cluster(connection.cluster, {
      ...given,
      lazyConnect: true,
      // Not false, unlike a standalone client: ioredis connects to each node on its first command,
      // and with the queue off it rejects other commands for that node until it is connected
      // ("Connection is closed."; cluster/index.js, tryConnection). Calls are refused anyway while
      // the cluster is not ready, so this only holds commands during a node's first connect
      // (bounded by connectTimeout: node connections never retry, they end and are replaced).
      enableOfflineQueue: true,
      clusterRetryStrategy: retryStrategy,
      retryDelayOnFailover: 0,
      retryDelayOnClusterDown: 0,
      // Node connections are lazy, queue until their first connect and never reconnect: ioredis
      // sets that itself (cluster/ConnectionPool.js) whatever is passed here.
      redisOptions: { ...given.redisOptions, ...perConnection },
    });
    client.on('node error', report);
    endpoint = `redis-cluster://${connection.cluster.map(describeNode).join(',')}`;
  } else if ('sentinels' in connection) {
    client = new Redis({
      sentinels: connection.sentinels.map(({ host, port }) => ({ host, port })),
      name: connection.name,
      username: connection.username,
      password: connection.password,
      sentinelUsername: connection.sentinelUsername,
      sentinelPassword: connection.sentinelPassword,
      db: connection.db ?? 0,
      ...(connection.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
      ...nodeOptions,
    });
    const hosts = connection.sentinels.map((s) => `${s.host}:${s.port}`).join(',');
    endpoint = `redis-sentinel://${hosts}/${encodeURIComponent(connection.name)}`;
  } else if (connection.url !== undefined) {
    client = new Redis(connection.url, nodeOptions);
    endpoint = redactUrl(connection.url);
  } else {
    const { host = '127.0.0.1', port = 6379, db = 0, tls = false } = connection;
    client = new Redis({
      host,
      port,
      db,
      username: connection.username,
      password: connection.password,
      ...(tls ? { tls: {} } : {}),
      ...nodeOptions,
    });
    endpoint = `${tls ? 'rediss' : 'redis'}://${host}:${port}/${db}`;
  }
  client.on('error', report);
  // connect() rejects when the first attempt fails, which 'error' reported already; the retry
  // strategy carries on from there.
  client.connect().catch(() => undefined);
  return wrapIoredisClient(client, { owned: true, endpoint });
}

/**
 * Wraps an ioredis `Redis` or `Cluster` the caller created and owns: Larder never connects or
 * closes it (it does open, and close, the connections of its own subscriptions). Calls reject
 * while the client's status is not `ready`; for Larder's fail-fast behaviour also create it with
 * `maxRetriesPerRequest: 0` and, for a standalone `Redis` (not a `Cluster`: see
 * {@link createIoredisDriver}), `enableOfflineQueue: false`. A `keyPrefix` is honoured, SCAN included.
 */
export function ioredisDriverFromClient(client: IoredisClient): RedisDriver {
  return wrapIoredisClient(client, { owned: false, endpoint: `external client (${describeClient(client)})` });
}

function wrapIoredisClient(
  client: IoredisClient,
  { owned, endpoint }: { owned: boolean; endpoint: string },
): RedisDriver {
  const cluster = client instanceof Cluster;
  // ioredis adds `keyPrefix` to the keys of commands but not to SCAN's pattern or replies.
  const prefix = client.options.keyPrefix ?? '';
  const subscriptions = new Set<Subscription>();
  // ioredis moves to 'end' only once the socket has closed: the driver knows it is closed at once.
  let closed = false;

  /** Fails fast unless the client can send now; ioredis would otherwise queue or connect first. */
  function ready(): void {
    if (closed) throw new Error('The ioredis driver was closed');
    if (client.status !== 'ready') {
      throw new Error(
        `ioredis client is not ready (status: ${client.status}); not sending while Redis is unreachable`,
      );
    }
  }

  /** Index groups of keys that one command may carry: one group, or one per hash slot on a cluster. */
  function groups(keys: readonly string[]): number[][] {
    if (!cluster) return [keys.map((_, i) => i)];
    const bySlot = new Map<number, number[]>();
    keys.forEach((key, i) => {
      const slot = keySlot(prefix + key);
      const group = bySlot.get(slot);
      if (group === undefined) bySlot.set(slot, [i]);
      else group.push(i);
    });
    return [...bySlot.values()];
  }

  /**
   * Runs one command per item in a pipeline (a MULTI when `atomic`) per group, groups in parallel.
   * ioredis resolves a pipeline with `[error, reply]` pairs instead of rejecting: each is checked.
   */
  async function batch<T>(
    items: readonly T[],
    keyOf: (item: T) => string,
    add: (pipeline: ReturnType<IoredisClient['pipeline']>, item: T) => void,
    atomic: boolean,
  ): Promise<unknown[]> {
    const indexGroups = groups(items.map(keyOf));
    if (atomic && indexGroups.length > 1) {
      throw new LarderError(
        ErrorCode.CrossSlot,
        `An atomic batch on a Redis Cluster needs all its keys in one hash slot; these ${items.length} ` +
          `keys span ${indexGroups.length} slots. Write them without \`atomic\`, or use a single Redis node.`,
        { keys: items.length, slots: indexGroups.length },
      );
    }
    const replies: unknown[] = new Array(items.length);
    const errors: unknown[] = [];
    const settled = await Promise.allSettled(
      indexGroups.map(async (indexes) => {
        const pipeline = atomic ? client.multi() : client.pipeline();
        for (const i of indexes) add(pipeline, items[i] as T);
        const results = await pipeline.exec();
        if (results === null) throw new Error('The transaction was aborted (EXEC returned null)');
        results.forEach(([error, reply], j) => {
          if (error) errors.push(error);
          else replies[indexes[j] as number] = reply;
        });
      }),
    );
    for (const outcome of settled) if (outcome.status === 'rejected') errors.unshift(outcome.reason);
    if (errors.length > 0) {
      throw new Error(`${errors.length} of ${items.length} commands failed: ${messageOf(errors[0])}`, {
        cause: errors[0],
      });
    }
    return replies;
  }

  const sendSet = async (w: DriverWrite): Promise<void> => {
    ready();
    await client.set(w.key, w.value, 'PX', w.ttlMs);
  };
  // Standalone: SETs of one tick share a pipeline (one socket write). A cluster pipeline must
  // stay within one slot, so there each SET goes on its own.
  const setOne = cluster
    ? sendSet
    : pipelinePerTick<DriverWrite>(sendSet, async (writes) => {
        ready();
        const pipeline = client.pipeline();
        for (const w of writes) pipeline.set(w.key, w.value, 'PX', w.ttlMs);
        const results = (await pipeline.exec()) ?? [];
        return writes.map((_, i) => {
          const result = results[i];
          return result === undefined
            ? new Error('The pipeline returned no reply for this SET')
            : (result[0] ?? undefined);
        });
      });

  const driver: RedisDriver = {
    name: DRIVER_NAME,
    endpoint,
    get isReady() {
      return !closed && client.status === 'ready';
    },
    mget: coalesceMget<string | null>(async (keys) => {
      if (keys.length === 0) return [];
      ready();
      if (!cluster) return client.mget(keys as string[]);
      const out = new Array<string | null>(keys.length);
      await Promise.all(
        groups(keys).map(async (indexes) => {
          const replies = await client.mget(indexes.map((i) => keys[i] as string));
          replies.forEach((reply, j) => {
            out[indexes[j] as number] = reply ?? null;
          });
        }),
      );
      return out;
    }),
    mgetBuffers: coalesceMget<Buffer | null>(async (keys) => {
      if (keys.length === 0) return [];
      ready();
      if (!cluster) return client.mgetBuffer(keys as string[]);
      const out = new Array<Buffer | null>(keys.length);
      await Promise.all(
        groups(keys).map(async (indexes) => {
          const replies = await client.mgetBuffer(indexes.map((i) => keys[i] as string));
          replies.forEach((reply, j) => {
            out[indexes[j] as number] = reply ?? null;
          });
        }),
      );
      return out;
    }),
    set: (key, value, ttlMs) => setOne({ key, value, ttlMs }),
    async setMany(writes: readonly DriverWrite[], atomic) {
      if (writes.length === 0) return;
      ready();
      await batch(
        writes,
        (w) => w.key,
        (p, w) => p.set(w.key, w.value, 'PX', w.ttlMs),
        atomic,
      );
    },
    async unlink(keys) {
      if (keys.length === 0) return 0;
      ready();
      const counts = await Promise.all(
        groups(keys).map((indexes) => client.unlink(...indexes.map((i) => keys[i] as string))),
      );
      return counts.reduce((sum, n) => sum + n, 0);
    },
    async incrBy(keys, increment) {
      if (keys.length === 0) return [];
      ready();
      if (keys.length === 1) return [await client.incrby(keys[0] as string, increment)];
      const replies = await batch(
        keys,
        (key) => key,
        (p, key) => p.incrby(key, increment),
        false,
      );
      return replies.map(Number);
    },
    async setIfAbsent(key, value, ttlMs) {
      ready();
      return (await client.set(key, value, 'PX', ttlMs, 'NX')) !== null;
    },
    async deleteIfEquals(key, value) {
      ready();
      return Number(await client.eval(DELETE_IF_EQUALS, 1, key, value)) === 1;
    },
    async publish(channel, message) {
      ready();
      await (cluster ? channelNode(client as Cluster, channel) : client).publish(channel, message);
    },
    subscribe(channel, listener) {
      if (closed) throw new Error('The ioredis driver was closed');
      const subscription = subscribeOn(client, channel, listener, () => subscriptions.delete(subscription));
      subscriptions.add(subscription);
      return subscription;
    },
    async scan(cursor, match, count) {
      ready();
      const pattern = escapeGlob(prefix) + match;
      const page = cluster
        ? await scanCluster(client as Cluster, cursor, pattern, count)
        : await scanNode(client as Redis, cursor, pattern, count);
      return {
        cursor: page.cursor,
        keys: prefix === '' ? page.keys : page.keys.map((k) => k.slice(prefix.length)),
      };
    },
    async ping() {
      ready();
      await client.ping();
    },
    async close() {
      closed = true;
      await Promise.all([...subscriptions].map((s) => s.close()));
      // disconnect() rejects pending commands at once; quit() would wait for replies that may never come.
      if (owned && client.status !== 'end') client.disconnect();
    },
  };
  return driver;
}

/**
 * Opens a subscription in the background on a connection of its own: a duplicate of a standalone
 * client, or a connection to one of the cluster's nodes once the cluster knows them (PUBLISH
 * reaches every node of a cluster). The connection fails fast like the driver's and reconnects
 * forever; autoResubscribe is off so that this code subscribes on every 'ready' and calls `up()`
 * only once the server confirmed. `down()` is called once per outage (the first 'error' or
 * 'close'), including when the first attempts fail.
 */
function subscribeOn(
  client: IoredisClient,
  channel: string,
  listener: SubscriptionListener,
  onClose: () => void,
): Subscription {
  let closed = false;
  let state: 'pending' | 'up' | 'down' = 'pending';
  let subscriber: Redis | undefined;
  let stopWaiting = (): void => undefined;
  const goDown = (reason: string) => {
    if (closed || state === 'down') return;
    state = 'down';
    listener.down(reason);
  };
  const goUp = () => {
    if (closed || state === 'up') return;
    state = 'up';
    listener.up();
  };
  const open = (connection: Redis) => {
    subscriber = connection;
    connection.on('message', (from: string, message: string) => {
      if (from === channel && !closed) listener.message(message);
    });
    connection.on('error', (error: unknown) => goDown(redactText(messageOf(error))));
    connection.on('close', () => goDown('connection closed'));
    connection.on('ready', () => {
      // A failure here means the connection dropped again: its 'close' reports it.
      connection.subscribe(channel).then(goUp, () => undefined);
    });
    // A failed first attempt is reported by 'error'; the retry strategy goes on from there.
    connection.connect().catch(() => undefined);
  };
  const overrides: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: false,
    retryStrategy: backoff(500),
  };
  if (client instanceof Cluster) {
    const start = () => {
      if (closed || subscriber !== undefined) return;
      const node = client.nodes('master')[0] ?? client.nodes('all')[0];
      if (node === undefined) return;
      client.off('ready', start);
      open(
        new Redis({
          ...client.options.redisOptions,
          host: node.options.host,
          port: node.options.port,
          ...overrides,
        }),
      );
    };
    // Until the cluster has found its nodes there is nowhere to subscribe: wait for it.
    client.on('ready', start);
    stopWaiting = () => client.off('ready', start);
    start();
    if (subscriber === undefined) goDown('waiting for the cluster to be ready');
  } else {
    open(client.duplicate(overrides));
  }
  return {
    async close() {
      if (closed) return;
      closed = true;
      onClose();
      stopWaiting();
      subscriber?.disconnect();
    },
  };
}

/**
 * The primary serving the channel's name as a key. A PUBLISH carries no key, so ioredis sends each
 * to a random node, and messages relayed by different nodes over the cluster bus may overtake one
 * another; one node per channel keeps each publisher's messages in order.
 */
function channelNode(client: Cluster, channel: string): IoredisClient {
  const id = client.slots[keySlot(channel)]?.[0];
  const node = id === undefined ? undefined : client.nodes('master').find((n) => nodeId(n) === id);
  return node ?? client;
}

function nodeId(node: Redis): string {
  return `${node.options.host}:${node.options.port}`;
}

async function scanNode(
  node: Redis,
  cursor: string,
  match: string,
  count: number,
): Promise<{ cursor: string; keys: string[] }> {
  const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', count);
  return { cursor: next, keys };
}

/**
 * SCAN over every primary of a cluster, one node after the other, in the order of their
 * `host:port`. The cursor is `0` at the start and the end, and `<node cursor>@<host>:<port>` in
 * between: the node being scanned and SCAN's own cursor on it. A node that left the cluster
 * mid-scan is skipped to the next one in that order (its keys moved to nodes scanned or not yet).
 */
async function scanCluster(
  client: Cluster,
  cursor: string,
  match: string,
  count: number,
): Promise<{ cursor: string; keys: string[] }> {
  const masters = client
    .nodes('master')
    .map((node) => ({ node, id: nodeId(node) }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (masters.length === 0) throw new Error('No Redis Cluster primary is known yet');
  let index = 0;
  let inner = '0';
  if (cursor !== '0') {
    const at = cursor.indexOf('@');
    if (at <= 0) throw new Error(`Not a cluster SCAN cursor: ${cursor}`);
    const id = cursor.slice(at + 1);
    index = masters.findIndex((m) => m.id === id);
    if (index === -1) {
      index = masters.findIndex((m) => m.id > id);
      if (index === -1) return { cursor: '0', keys: [] };
    } else {
      inner = cursor.slice(0, at);
    }
  }
  const current = masters[index] as (typeof masters)[number];
  // Node connections queue until connected ('wait'); any other state than ready means trouble.
  if (current.node.status !== 'ready' && current.node.status !== 'wait') {
    throw new Error(`Cluster node ${current.id} is not ready (status: ${current.node.status})`);
  }
  const page = await scanNode(current.node, inner, match, count);
  if (page.cursor !== '0') return { cursor: `${page.cursor}@${current.id}`, keys: page.keys };
  const following = masters[index + 1];
  return { cursor: following === undefined ? '0' : `0@${following.id}`, keys: page.keys };
}

// Compare-and-delete, so a lock is released only by its holder (the token is the value).
const DELETE_IF_EQUALS =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/** Capped exponential back-off with jitter; never gives up (the circuit breaker decides use). */
function backoff(maxDelayMs: number): (attempt: number) => number {
  return (attempt) => Math.round(Math.min(25 * 2 ** attempt, maxDelayMs) * (0.5 + Math.random() / 2));
}

const CRC16 = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[byte] = crc & 0xffff;
  }
  return table;
})();

/**
 * The Redis Cluster hash slot of a key (CRC16-XMODEM of its UTF-8 bytes, modulo 16384), honouring
 * `{hash tags}`: when the key has a `{` followed by a non-empty `...}`, only that part is hashed.
 * The same function as `cluster-key-slot`, which ioredis uses but does not export.
 */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key, 'utf8');
  let start = 0;
  let end = bytes.length;
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) {
      start = open + 1;
      end = close;
    }
  }
  let crc = 0;
  for (let i = start; i < end; i++)
    crc = ((crc << 8) & 0xffff) ^ (CRC16[((crc >> 8) ^ (bytes[i] as number)) & 0xff] as number);
  return crc & 16383;
}

/** Escapes SCAN glob characters, so a literal prefix can start a pattern. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

function describeNode(node: ClusterNode): string {
  if (typeof node === 'number') return `127.0.0.1:${node}`;
  if (typeof node === 'string')
    return redactUrl(node)
      .replace(/^rediss?:\/\//, '')
      .replace(/\/$/, '');
  return `${node.host ?? '127.0.0.1'}:${node.port ?? 6379}`;
}

function describeClient(client: IoredisClient): string {
  if (client instanceof Cluster) return 'ioredis Cluster';
  const { host, port, path, sentinels, name } = client.options;
  if (sentinels) return `Sentinel ${name ?? ''}`.trim();
  return path ?? `${host}:${port}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
