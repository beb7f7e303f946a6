import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RedisDriver, SubscriptionListener } from '../../src/drivers/driver.js';
import { type CacheOptions, createCache } from '../../src/index.js';
import { TestRedisCluster } from '../support/redis-cluster.js';
import { TestRedisServer } from '../support/redis-server.js';

/** What the suite does to the server(s) behind a driver. */
export type ServerControl = {
  readonly running: boolean;
  /** Client connections open on the server (every node), the asking one excluded. */
  clientCount(): Promise<number>;
  flushAll(): Promise<void>;
  /** Runs a script that never ends: the server holds every connection and answers nothing. */
  block(): void;
  /** SIGKILL. */
  kill(): Promise<void>;
  /** Back after {@link kill} (empty), once it serves commands. */
  restart(): Promise<void>;
  stop(): Promise<void>;
};

/** How to start the server(s) a driver talks to. */
export type Backend<S> = { start(): Promise<S>; control(server: S): ServerControl };

// Lua runs to completion on Redis's only thread: every other connection waits (BUSY after 5 s).
const NEVER_ENDING_SCRIPT = 'while true do end';

/** One redis-server. */
export const standaloneBackend: Backend<TestRedisServer> = {
  start: () => TestRedisServer.start(),
  control: (server) => ({
    get running() {
      return server.running;
    },
    clientCount: async () => countClients(await server.command('CLIENT', 'LIST')),
    flushAll: async () => {
      await server.command('FLUSHALL');
    },
    block: () => {
      // Its reply (BUSY, or nothing once killed) is not awaited: the point is that it never ends.
      server.command('EVAL', NEVER_ENDING_SCRIPT, '0').catch(() => undefined);
    },
    kill: () => server.kill(),
    restart: () => server.restart(),
    stop: () => server.stop(),
  }),
};

/** A three-primary Redis Cluster. */
export const clusterBackend: Backend<TestRedisCluster> = {
  start: () => TestRedisCluster.start(3),
  control: (cluster) => ({
    get running() {
      return cluster.running;
    },
    clientCount: async () =>
      (await cluster.commandOnEach('CLIENT', 'LIST')).reduce((sum, list) => sum + countClients(list), 0),
    flushAll: async () => {
      await cluster.commandOnEach('FLUSHALL');
    },
    block: () => {
      cluster.commandOnEach('EVAL', NEVER_ENDING_SCRIPT, '0').catch(() => undefined);
    },
    kill: () => cluster.kill(),
    restart: () => cluster.restart(),
    stop: () => cluster.stop(),
  }),
};

/** No server at all (the memory driver). The cases that need one are skipped by the capabilities. */
export const noBackend: Backend<undefined> = {
  start: async () => undefined,
  control: () => ({
    running: true,
    clientCount: () => Promise.reject(new Error('no server')),
    flushAll: async () => undefined,
    block: () => undefined,
    kill: () => Promise.reject(new Error('no server')),
    restart: async () => undefined,
    stop: async () => undefined,
  }),
};

/** A driver on a client the test created and owns. */
export type CallerOwnedClient = {
  driver: RedisDriver;
  /** Whether the client still answers (after the driver was closed). */
  works(): Promise<boolean>;
  /** Closes the client. */
  close(): Promise<void>;
};

/**
 * What a driver can do, so the suite skips (visibly) what it legitimately lacks. A capability that
 * is off is still checked where the interface says what "off" looks like (no `subscribe` at all).
 */
export type DriverCapabilities<S> = {
  backend: Backend<S>;
  /** `subscribe()` exists. */
  pubsub: boolean;
  /** Calls go to the server: killing it makes them fail (false for the memory driver). */
  remote: boolean;
  /** The driver holds connections of its own on the server (seen in CLIENT LIST). */
  connections: boolean;
  /** `setMany(…, true)` takes keys of any hash slot (false on a cluster: it must reject them). */
  atomicAcrossSlots: boolean;
  /** `mgetBuffers()` exists and values may be bytes (false for Upstash REST). @default true */
  binary?: boolean;
  /** Builds a driver on a caller-owned client, to check that `close()` leaves the client open. */
  callerOwned?: (server: S) => Promise<CallerOwnedClient>;
};

/** Values that must come back byte for byte: empty, number- and JSON-looking, base64-looking, UTF-8 of every width, control characters, large. */
export const TRICKY_VALUES: readonly string[] = [
  '',
  'plain',
  'OK',
  '0',
  '007',
  '-1',
  '1e3',
  'null',
  'true',
  '{"a":[1,"b"],"c":null}',
  '"quoted"',
  'T0s=',
  'MA==',
  'héllo wörld ✓',
  'emoji 🎉👩‍💻',
  '日本語テキスト',
  'nul\u0000byte',
  'line\r\nbreak\ttab',
  'back\\slash %2A *?[]{}',
  ' padded ',
  `${'x'.repeat(300_000)}é`,
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true (or stops throwing); fails after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
      last = undefined;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    }
    await sleep(10);
  }
}

/** Resolves once the driver is ready and answers PING. */
export async function untilReady(driver: RedisDriver, timeoutMs = 10_000): Promise<void> {
  await eventually(async () => {
    if (!driver.isReady) return false;
    await driver.ping();
    return true;
  }, timeoutMs);
}

/** Every key matching `match`, following the cursor to the end; also returns the page count. */
export async function scanAll(
  driver: RedisDriver,
  match: string,
  count = 1000,
): Promise<{ keys: string[]; pages: number }> {
  const keys = new Set<string>();
  let cursor = '0';
  let pages = 0;
  do {
    const page = await driver.scan(cursor, match, count);
    pages += 1;
    for (const key of page.keys) keys.add(key);
    cursor = page.cursor;
    if (pages > 100_000) throw new Error('SCAN did not end');
  } while (cursor !== '0');
  return { keys: [...keys].sort(), pages };
}

/** A listener that records what it is told. */
export function recordingListener(): SubscriptionListener & {
  messages: string[];
  ups: number;
  downs: string[];
} {
  const listener = {
    messages: [] as string[],
    ups: 0,
    downs: [] as string[],
    message(payload: string) {
      listener.messages.push(payload);
    },
    up() {
      listener.ups += 1;
    },
    down(reason: string) {
      listener.downs.push(reason);
    },
  };
  return listener;
}

/** Milliseconds `promise` took to reject; fails if it resolved. */
async function rejectionTime(promise: Promise<unknown>): Promise<number> {
  const started = performance.now();
  try {
    await promise;
  } catch {
    return performance.now() - started;
  }
  throw new Error('expected a rejection');
}

function countClients(clientList: string): number {
  // The raw reply lists one connection per line, the asking one included.
  return (clientList.match(/(^|\n)id=/g) ?? []).length - 1;
}

/**
 * The conformance suite every {@link RedisDriver} passes: every method and its edge cases, expiry,
 * pub/sub, lifecycle and behaviour when the server dies, plus a cache end to end on the driver.
 * `makeDriver` is called for each test; the suite closes what it returns.
 */
export function runDriverConformance<S = TestRedisServer>(
  name: string,
  makeDriver: (server: S) => Promise<RedisDriver>,
  capabilities: DriverCapabilities<S>,
): void {
  const caps = capabilities;
  describe(`${name} driver conformance`, () => {
    let server: S;
    let control: ServerControl;
    let driver: RedisDriver;
    let test = 0;
    /** A key of this test (tests never see each other's keys). */
    const key = (suffix: string) => `conf:${test}:${suffix}`;
    /** Keys of one hash slot (a hash tag), for what a cluster runs on one node only. */
    const slotKey = (suffix: string) => `{conf:${test}}:${suffix}`;

    beforeAll(async () => {
      server = await caps.backend.start();
      control = caps.backend.control(server);
    }, 60_000);
    afterAll(async () => {
      await control?.stop();
    });
    beforeEach(async () => {
      test += 1;
      driver = await makeDriver(server);
      await untilReady(driver);
    }, 30_000);
    afterEach(async () => {
      await driver?.close();
      if (!control.running) await control.restart();
      await control.flushAll();
    }, 30_000);

    describe('identity', () => {
      it('has a name and an endpoint, and is ready once connected', () => {
        expect(driver.name).toMatch(/\S/);
        expect(typeof driver.endpoint).toBe('string');
        expect(driver.isReady).toBe(true);
      });

      it('answers PING', async () => {
        await expect(driver.ping()).resolves.toBeUndefined();
      });
    });

    describe('mget', () => {
      it('resolves [] for no keys', async () => {
        await expect(driver.mget([])).resolves.toEqual([]);
      });

      it('answers null for missing keys, in the order asked, repeats included', async () => {
        await driver.set(key('a'), '1', 60_000);
        await driver.set(key('c'), '3', 60_000);
        await expect(driver.mget([key('a'), key('b'), key('c'), key('a')])).resolves.toEqual([
          '1',
          null,
          '3',
          '1',
        ]);
      });

      it('reads keys of many hash slots in one call', async () => {
        const keys = Array.from({ length: 40 }, (_, i) => key(`many-${i}`));
        for (const [i, k] of keys.entries()) if (i % 3 !== 0) await driver.set(k, `v${i}`, 60_000);
        await expect(driver.mget(keys)).resolves.toEqual(keys.map((_, i) => (i % 3 === 0 ? null : `v${i}`)));
      });
    });

    describe('mgetBuffers (binary values)', () => {
      it('round-trips arbitrary bytes, or is absent', async () => {
        const mgetBuffers = driver.mgetBuffers?.bind(driver);
        if (caps.binary === false) {
          expect(mgetBuffers).toBeUndefined();
          return;
        }
        expect(mgetBuffers).toBeDefined();
        const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        await driver.set(key('bin'), bytes, 60_000);
        await driver.setMany(
          [{ key: key('bin2'), value: Buffer.from([0, 0xff, 0x7b]), ttlMs: 60_000 }],
          false,
        );
        await driver.set(key('text'), 'héllo', 60_000);
        const [a, missing, b, text] =
          (await mgetBuffers?.([key('bin'), key('none'), key('bin2'), key('text')])) ?? [];
        expect(a?.equals(bytes)).toBe(true);
        expect(missing).toBeNull();
        expect([...(b ?? [])]).toEqual([0, 0xff, 0x7b]);
        expect(text?.toString()).toBe('héllo');
      });
    });

    describe('set', () => {
      it('round-trips values exactly', async () => {
        const keys = TRICKY_VALUES.map((_, i) => key(`value-${i}`));
        for (const [i, value] of TRICKY_VALUES.entries()) await driver.set(keys[i] as string, value, 60_000);
        const read = await driver.mget(keys);
        read.forEach((value, i) => expect(value, `value #${i}`).toBe(TRICKY_VALUES[i]));
      });

      it('expires after its TTL', async () => {
        await driver.set(key('short'), 'v', 200);
        await driver.set(key('long'), 'v', 60_000);
        await expect(driver.mget([key('short')])).resolves.toEqual(['v']);
        await eventually(async () => (await driver.mget([key('short')]))[0] === null, 3000);
        await expect(driver.mget([key('long')])).resolves.toEqual(['v']);
      });

      it('overwrites both the value and the TTL', async () => {
        await driver.set(key('k'), 'v1', 60_000);
        await driver.set(key('k'), 'v2', 200);
        await expect(driver.mget([key('k')])).resolves.toEqual(['v2']);
        await eventually(async () => (await driver.mget([key('k')]))[0] === null, 3000);
      });

      it('rejects a TTL Redis refuses (0 ms)', async () => {
        await expect(driver.set(key('k'), 'v', 0)).rejects.toThrow();
        await expect(driver.mget([key('k')])).resolves.toEqual([null]);
      });
    });

    describe('setMany', () => {
      it('resolves at once for no writes, pipelined or atomic', async () => {
        await expect(driver.setMany([], false)).resolves.toBeUndefined();
        await expect(driver.setMany([], true)).resolves.toBeUndefined();
      });

      it('pipelined: writes every entry with its own TTL, across slots', async () => {
        const writes = Array.from({ length: 30 }, (_, i) => ({
          key: key(`p-${i}`),
          value: `v${i}`,
          ttlMs: i === 7 ? 200 : 60_000,
        }));
        await driver.setMany(writes, false);
        await expect(driver.mget(writes.map((w) => w.key))).resolves.toEqual(writes.map((w) => w.value));
        await eventually(async () => (await driver.mget([key('p-7')]))[0] === null, 3000);
        await expect(driver.mget([key('p-6'), key('p-8')])).resolves.toEqual(['v6', 'v8']);
      });

      it('atomic: writes entries that share a hash slot', async () => {
        const writes = ['a', 'b', 'c'].map((s) => ({ key: slotKey(s), value: `v-${s}`, ttlMs: 60_000 }));
        await driver.setMany(writes, true);
        await expect(driver.mget(writes.map((w) => w.key))).resolves.toEqual(['v-a', 'v-b', 'v-c']);
      });

      if (caps.atomicAcrossSlots) {
        it('atomic: writes entries of any slots', async () => {
          const writes = Array.from({ length: 10 }, (_, i) => ({
            key: key(`t-${i}`),
            value: `v${i}`,
            ttlMs: 60_000,
          }));
          await driver.setMany(writes, true);
          await expect(driver.mget(writes.map((w) => w.key))).resolves.toEqual(writes.map((w) => w.value));
        });
      } else {
        it('atomic: rejects keys of several slots with a clear error, and writes none', async () => {
          const writes = Array.from({ length: 10 }, (_, i) => ({
            key: key(`t-${i}`),
            value: `v${i}`,
            ttlMs: 60_000,
          }));
          await expect(driver.setMany(writes, true)).rejects.toThrow(/slot/);
          await expect(driver.mget(writes.map((w) => w.key))).resolves.toEqual(writes.map(() => null));
        });
      }

      it.each([
        ['pipelined', false],
        ['atomic', true],
      ])(
        '%s: rejects when a write fails, and keeps the others (Redis does not roll back)',
        async (_, atomic) => {
          const writes = ['a', 'b', 'c'].map((s) => ({
            key: slotKey(s),
            value: `v-${s}`,
            ttlMs: s === 'b' ? 0 : 60_000,
          }));
          await expect(driver.setMany(writes, atomic)).rejects.toThrow();
          await expect(driver.mget(writes.map((w) => w.key))).resolves.toEqual(['v-a', null, 'v-c']);
        },
      );
    });

    describe('unlink', () => {
      it('resolves 0 for no keys', async () => {
        await expect(driver.unlink([])).resolves.toBe(0);
      });

      it('counts only the keys that existed, and removes them', async () => {
        await driver.set(key('a'), '1', 60_000);
        await driver.set(key('b'), '2', 60_000);
        await expect(driver.unlink([key('a'), key('b'), key('missing')])).resolves.toBe(2);
        await expect(driver.mget([key('a'), key('b')])).resolves.toEqual([null, null]);
        await expect(driver.unlink([key('a')])).resolves.toBe(0);
      });

      it('does not count expired keys', async () => {
        await driver.set(key('gone'), 'v', 100);
        await eventually(async () => (await driver.mget([key('gone')]))[0] === null, 3000);
        await expect(driver.unlink([key('gone')])).resolves.toBe(0);
      });

      it('removes keys of many hash slots in one call', async () => {
        const keys = Array.from({ length: 30 }, (_, i) => key(`u-${i}`));
        await driver.setMany(
          keys.map((k) => ({ key: k, value: 'v', ttlMs: 60_000 })),
          false,
        );
        await expect(driver.unlink([...keys, key('none')])).resolves.toBe(30);
        await expect(driver.mget(keys)).resolves.toEqual(keys.map(() => null));
      });
    });

    describe('incrBy', () => {
      it('resolves [] for no keys', async () => {
        await expect(driver.incrBy([], 1)).resolves.toEqual([]);
      });

      it('starts a missing counter from 0, and accepts negative increments', async () => {
        await expect(driver.incrBy([key('n')], 5)).resolves.toEqual([5]);
        await expect(driver.incrBy([key('n')], 5)).resolves.toEqual([10]);
        await expect(driver.incrBy([key('n')], -3)).resolves.toEqual([7]);
        await expect(driver.mget([key('n')])).resolves.toEqual(['7']);
      });

      it('increments several counters in order, across slots, repeats included', async () => {
        const keys = Array.from({ length: 12 }, (_, i) => key(`c-${i}`));
        await driver.set(keys[3] as string, '100', 60_000);
        const result = await driver.incrBy([...keys, keys[0] as string], 1);
        expect(result).toEqual([1, 1, 1, 101, 1, 1, 1, 1, 1, 1, 1, 1, 2]);
      });

      it('keeps the TTL of the counter it increments', async () => {
        await driver.set(key('ttl'), '1', 200);
        await expect(driver.incrBy([key('ttl')], 1)).resolves.toEqual([2]);
        await eventually(async () => (await driver.mget([key('ttl')]))[0] === null, 3000);
      });

      it('rejects for a value that is not an integer', async () => {
        await driver.set(key('text'), 'abc', 60_000);
        await expect(driver.incrBy([key('text')], 1)).rejects.toThrow();
        await expect(driver.incrBy([key('ok'), key('text')], 1)).rejects.toThrow();
        await expect(driver.mget([key('text')])).resolves.toEqual(['abc']);
      });
    });

    describe('setIfAbsent', () => {
      it('stores only when the key is absent', async () => {
        await expect(driver.setIfAbsent(key('lock'), 'first', 60_000)).resolves.toBe(true);
        await expect(driver.setIfAbsent(key('lock'), 'second', 60_000)).resolves.toBe(false);
        await expect(driver.mget([key('lock')])).resolves.toEqual(['first']);
      });

      it('does not overwrite a value written by set()', async () => {
        await driver.set(key('k'), 'kept', 60_000);
        await expect(driver.setIfAbsent(key('k'), 'other', 60_000)).resolves.toBe(false);
        await expect(driver.mget([key('k')])).resolves.toEqual(['kept']);
      });

      it('applies its TTL, after which the key can be taken again', async () => {
        await expect(driver.setIfAbsent(key('lease'), 'a', 200)).resolves.toBe(true);
        await expect(driver.setIfAbsent(key('lease'), 'b', 200)).resolves.toBe(false);
        await eventually(() => driver.setIfAbsent(key('lease'), 'c', 60_000), 3000);
        await expect(driver.mget([key('lease')])).resolves.toEqual(['c']);
      });
    });

    describe('deleteIfEquals', () => {
      it('deletes only while the key holds the value', async () => {
        const token = 'tök€n-🎉';
        await driver.set(key('lock'), token, 60_000);
        await expect(driver.deleteIfEquals(key('lock'), 'someone else')).resolves.toBe(false);
        await expect(driver.deleteIfEquals(key('lock'), `${token} `)).resolves.toBe(false);
        await expect(driver.mget([key('lock')])).resolves.toEqual([token]);
        await expect(driver.deleteIfEquals(key('lock'), token)).resolves.toBe(true);
        await expect(driver.mget([key('lock')])).resolves.toEqual([null]);
        await expect(driver.deleteIfEquals(key('lock'), token)).resolves.toBe(false);
      });

      it('resolves false for a missing key', async () => {
        await expect(driver.deleteIfEquals(key('none'), 'v')).resolves.toBe(false);
      });
    });

    describe('scan', () => {
      it('pages through the keys of a pattern with percent-escaped text, back to cursor "0"', async () => {
        // Larder escapes glob characters in segments as %2A etc.: the pattern must match them literally.
        const base = key('s');
        const wanted = Array.from({ length: 150 }, (_, i) => `${base}:ns%2Aa:${i}`);
        const decoys = [
          ...Array.from({ length: 20 }, (_, i) => `${base}:ns%2Ab:${i}`),
          ...Array.from({ length: 5 }, (_, i) => `${base}:nsXa:${i}`),
          ...Array.from({ length: 5 }, (_, i) => `${base}:ns*a:${i}`),
          `${base}:ns%2Aa`,
        ];
        await driver.setMany(
          [...wanted, ...decoys].map((k) => ({ key: k, value: 'v', ttlMs: 60_000 })),
          false,
        );
        const { keys, pages } = await scanAll(driver, `${base}:ns%2Aa:*`, 20);
        expect(keys).toEqual([...wanted].sort());
        expect(pages).toBeGreaterThan(1);
      });

      it('ends at once on an empty match', async () => {
        const { keys } = await scanAll(driver, `${key('nothing')}:*`, 10);
        expect(keys).toEqual([]);
      });

      it('follows Redis glob syntax: * ? [set] [^set] [a-z] and \\ escapes, on bytes', async () => {
        const base = key('g');
        const names = ['a*b', 'axb', 'a?b', 'ab', 'a[b', 'a\\b', 'aXYb', 'z', 'é', 'ü'];
        await driver.setMany(
          names.map((n) => ({ key: `${base}:${n}`, value: 'v', ttlMs: 60_000 })),
          false,
        );
        const cases: Array<[string, string[]]> = [
          ['a\\*b', ['a*b']],
          ['a*b', ['a*b', 'axb', 'a?b', 'ab', 'a[b', 'a\\b', 'aXYb']],
          ['a?b', ['a*b', 'axb', 'a?b', 'a[b', 'a\\b']],
          ['a\\?b', ['a?b']],
          ['a[x*]b', ['a*b', 'axb']],
          ['a[^x*]b', ['a?b', 'a[b', 'a\\b']],
          ['a[a-z]b', ['axb']],
          ['a[z-a]b', ['axb']],
          ['a[\\[]b', ['a[b']],
          ['a\\\\b', ['a\\b']],
          ['?', ['z']],
          ['??', ['ab', 'é', 'ü']],
          ['a**b', ['a*b', 'axb', 'a?b', 'ab', 'a[b', 'a\\b', 'aXYb']],
          ['*Y*', ['aXYb']],
        ];
        for (const [pattern, expected] of cases) {
          const { keys } = await scanAll(driver, `${base}:${pattern}`, 1000);
          expect(keys, pattern).toEqual(expected.map((n) => `${base}:${n}`).sort());
        }
      });

      it('returns every key present for the whole scan, whatever changes meanwhile', async () => {
        const base = key('live');
        const all = Array.from({ length: 100 }, (_, i) => `${base}:${i}`);
        await driver.setMany(
          all.map((k) => ({ key: k, value: 'v', ttlMs: 60_000 })),
          false,
        );
        const seen = new Set<string>();
        let cursor = '0';
        let page = 0;
        do {
          const result = await driver.scan(cursor, `${base}:*`, 10);
          for (const k of result.keys) seen.add(k);
          cursor = result.cursor;
          page += 1;
          if (page === 2) {
            await driver.unlink(all.slice(0, 10));
            await driver.setMany(
              Array.from({ length: 10 }, (_, i) => ({ key: `${base}:new-${i}`, value: 'v', ttlMs: 60_000 })),
              false,
            );
          }
        } while (cursor !== '0');
        for (const k of all.slice(10)) expect(seen.has(k), k).toBe(true);
      });
    });

    if (caps.pubsub) {
      describe('publish and subscribe', () => {
        it('subscribe() returns at once, calls up() when subscribed, then delivers messages exactly', async () => {
          const listener = recordingListener();
          const subscription = driver.subscribe!(key('ch'), listener);
          try {
            expect(typeof (subscription as unknown as { then?: unknown }).then).toBe('undefined');
            await eventually(() => listener.ups === 1);
            const messages = ['one', '', 'héllo ✓ 🎉', '{"k":["a"]}', 'nul\u0000byte'];
            for (const m of messages) await driver.publish(key('ch'), m);
            await driver.publish(key('other'), 'not for this channel');
            await eventually(() => listener.messages.length >= messages.length);
            expect(listener.messages).toEqual(messages);
            expect(listener.ups).toBe(1);
            expect(listener.downs).toEqual([]);
          } finally {
            await subscription.close();
          }
        });

        it('delivers to every subscription of a channel', async () => {
          const a = recordingListener();
          const b = recordingListener();
          const subA = driver.subscribe!(key('ch'), a);
          const subB = driver.subscribe!(key('ch'), b);
          try {
            await eventually(() => a.ups === 1 && b.ups === 1);
            await driver.publish(key('ch'), 'both');
            await eventually(() => a.messages.length === 1 && b.messages.length === 1);
            expect([a.messages, b.messages]).toEqual([['both'], ['both']]);
          } finally {
            await Promise.all([subA.close(), subB.close()]);
          }
        });

        it('close() stops delivery', async () => {
          const closed = recordingListener();
          const open = recordingListener();
          const subClosed = driver.subscribe!(key('ch'), closed);
          const subOpen = driver.subscribe!(key('ch'), open);
          try {
            await eventually(() => closed.ups === 1 && open.ups === 1);
            await subClosed.close();
            await driver.publish(key('ch'), 'after close');
            await eventually(() => open.messages.length === 1);
            expect(closed.messages).toEqual([]);
            await expect(subClosed.close()).resolves.toBeUndefined();
          } finally {
            await subOpen.close();
          }
        });

        it('publish resolves when nobody listens', async () => {
          await expect(driver.publish(key('nobody'), 'x')).resolves.toBeUndefined();
        });
      });
    } else {
      describe('publish without subscribe', () => {
        it('has no subscribe(), so features that need pub/sub stay off', () => {
          expect(driver.subscribe).toBeUndefined();
        });

        it('publish still works', async () => {
          await expect(driver.publish(key('ch'), 'x')).resolves.toBeUndefined();
        });
      });
    }

    describe('close', () => {
      it('makes calls reject and isReady false, and can be called again', async () => {
        await driver.close();
        expect(driver.isReady).toBe(false);
        await expect(driver.mget([key('k')])).rejects.toThrow();
        await expect(driver.set(key('k'), 'v', 1000)).rejects.toThrow();
        await expect(driver.ping()).rejects.toThrow();
        await expect(driver.close()).resolves.toBeUndefined();
      });

      it.skipIf(!caps.connections)('releases the connections it opened', async () => {
        const baseline = await control.clientCount();
        const second = await makeDriver(server);
        await untilReady(second);
        // A cluster client connects to a node when it first sends it something: reach them all.
        await second.mget(Array.from({ length: 30 }, (_, i) => key(`touch-${i}`)));
        await scanAll(second, `${key('touch')}*`);
        expect(await control.clientCount()).toBeGreaterThan(baseline);
        await second.close();
        await eventually(async () => (await control.clientCount()) === baseline);
      });

      it.skipIf(!caps.connections || !caps.pubsub)(
        'a subscription releases its connection on close()',
        async () => {
          const baseline = await control.clientCount();
          const listener = recordingListener();
          const subscription = driver.subscribe!(key('ch'), listener);
          await eventually(() => listener.ups === 1);
          expect(await control.clientCount()).toBe(baseline + 1);
          await subscription.close();
          await eventually(async () => (await control.clientCount()) === baseline);
        },
      );

      it.skipIf(caps.callerOwned === undefined)('leaves a caller-owned client open', async () => {
        const owned = await caps.callerOwned!(server);
        try {
          await untilReady(owned.driver);
          await owned.driver.set(key('k'), 'v', 60_000);
          await owned.driver.close();
          expect(await owned.works()).toBe(true);
        } finally {
          await owned.close();
        }
      });
    });

    describe.skipIf(!caps.remote)('when the server dies', () => {
      it('calls reject promptly, without waiting for it to come back', async () => {
        await control.kill();
        const calls: Array<[string, () => Promise<unknown>]> = [
          ['mget', () => driver.mget([key('a'), key('b')])],
          ['set', () => driver.set(key('a'), 'v', 1000)],
          ['setMany', () => driver.setMany([{ key: slotKey('a'), value: 'v', ttlMs: 1000 }], false)],
          ['setMany atomic', () => driver.setMany([{ key: slotKey('a'), value: 'v', ttlMs: 1000 }], true)],
          ['unlink', () => driver.unlink([key('a')])],
          ['incrBy', () => driver.incrBy([key('a'), key('b')], 1)],
          ['setIfAbsent', () => driver.setIfAbsent(key('a'), 'v', 1000)],
          ['deleteIfEquals', () => driver.deleteIfEquals(key('a'), 'v')],
          ['publish', () => driver.publish(key('ch'), 'v')],
          ['scan', () => driver.scan('0', `${key('a')}*`, 10)],
          ['ping', () => driver.ping()],
        ];
        for (const [method, call] of calls) {
          expect(await rejectionTime(call()), method).toBeLessThan(1000);
        }
        // A connection-less driver (REST) cannot tell a dead server behind its endpoint from a failed command.
        if (caps.connections) await eventually(() => !driver.isReady, 3000);
      });

      it('a call in flight when it dies rejects promptly', async () => {
        control.block();
        await sleep(50); // let the script start
        const pending = driver.mget([key('a')]);
        pending.catch(() => undefined);
        await sleep(50); // let the command reach the busy server
        const killedAt = performance.now();
        await control.kill();
        await expect(pending).rejects.toThrow();
        expect(performance.now() - killedAt).toBeLessThan(1000);
      });

      it('recovers by itself once the server is back', async () => {
        await control.kill();
        await expect(driver.ping()).rejects.toThrow();
        await control.restart();
        await untilReady(driver);
        await driver.set(key('k'), 'back', 60_000);
        await expect(driver.mget([key('k')])).resolves.toEqual(['back']);
      });

      it.skipIf(!caps.pubsub)('a subscription reports down, then up again, and delivers again', async () => {
        const listener = recordingListener();
        const subscription = driver.subscribe!(key('ch'), listener);
        try {
          await eventually(() => listener.ups === 1);
          await control.kill();
          await eventually(() => listener.downs.length >= 1);
          await control.restart();
          await eventually(() => listener.ups === 2, 10_000);
          await untilReady(driver);
          await driver.publish(key('ch'), 'after restart');
          await eventually(() => listener.messages.includes('after restart'));
        } finally {
          await subscription.close();
        }
      });

      it.skipIf(!caps.pubsub)(
        'subscribing while it is down returns at once, reports down, and comes up with it',
        async () => {
          await control.kill();
          const listener = recordingListener();
          const subscription = driver.subscribe!(key('ch'), listener);
          try {
            await eventually(() => listener.downs.length >= 1);
            expect(listener.ups).toBe(0);
            await control.restart();
            await eventually(() => listener.ups === 1, 10_000);
            await untilReady(driver);
            await driver.publish(key('ch'), 'hello');
            await eventually(() => listener.messages.includes('hello'));
          } finally {
            await subscription.close();
          }
        },
      );
    });

    describe('under a cache (createCache)', () => {
      it.each<[string, CacheOptions]>([
        ['with the memory tier', {}],
        ['without the memory tier (every read through the driver)', { memory: false }],
      ])('set, get, getOrSet, deleteByTag and clear work %s', async (_, overrides) => {
        const own = await makeDriver(server);
        await untilReady(own);
        const cache = createCache({
          prefix: 'conf',
          ...overrides,
          redis: { driver: own, commandTimeout: 2000 },
        });
        try {
          await eventually(async () => (await cache.health()).status === 'ok');
          const ns = cache.namespace('e2e').forTenant('acme*');
          await ns.set('a', { n: 1, s: 'é 🎉' }, { ttl: '1m', tags: ['red'] });
          await ns.set('b', 'two', { ttl: '1m', tags: ['blue'] });
          expect(await ns.get('a')).toEqual({ n: 1, s: 'é 🎉' });
          expect(await ns.get('b')).toBe('two');
          // Written to the driver, under the cache's prefix.
          const stored = await scanAll(own, 'conf:*');
          expect(stored.keys.filter((k) => k.includes(':d:e2e:'))).toHaveLength(2);

          let loads = 0;
          const loader = async () => {
            loads += 1;
            return `loaded-${loads}`;
          };
          expect(await ns.getOrSet('c', loader, { ttl: '1m' })).toBe('loaded-1');
          expect(await ns.getOrSet('c', loader, { ttl: '1m' })).toBe('loaded-1');
          expect(loads).toBe(1);

          await ns.deleteByTag('red');
          expect(await ns.get('a')).toBeUndefined();
          expect(await ns.get('b')).toBe('two');

          await ns.clear();
          expect(await ns.get('b')).toBeUndefined();
          // Reclamation frees the cleared entries with SCAN + UNLINK.
          await eventually(async () => (await scanAll(own, 'conf:*:d:e2e:*')).keys.length === 0);
          expect(await ns.getOrSet('c', loader, { ttl: '1m' })).toBe('loaded-2');
          expect(cache.stats().totals.fallbacks).toBe(0);
          expect(cache.stats().totals.redisErrors).toBe(0);
        } finally {
          await cache.close();
        }
        expect(own.isReady).toBe(false);
      });
    });
  });
}
