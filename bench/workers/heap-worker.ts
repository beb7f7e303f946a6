/**
 * Scenario 8, one subject per process (run with --expose-gc): heap bytes per memory-tier entry.
 * Env: SUBJECT (a memory-only subject id, `lru-raw`, `map` or `map-json`), ENTRIES, VALUE_BYTES. Prints one JSON line.
 * Each entry is a fresh value object (parsed from JSON, as a value read from a database or an API
 * would be: its strings are its own) under a fresh key, handed to the cache and kept nowhere else.
 */
import { LRUCache } from 'lru-cache';
import { createSubject, type SubjectId } from '../subjects.js';
import { makeValue } from '../workload.js';

const kind = process.env.SUBJECT ?? 'map';
const entries = Number(process.env.ENTRIES ?? 100_000);
const valueBytes = Number(process.env.VALUE_BYTES ?? 200);

function settle(): number {
  for (let i = 0; i < 4; i++) globalThis.gc?.();
  return process.memoryUsage().heapUsed;
}

type Store = { put: (key: string, value: object) => unknown; check: (key: string) => Promise<boolean> };

function build(): Store {
  if (kind === 'map') {
    const map = new Map<string, object>();
    return { put: (k, v) => map.set(k, v), check: async (k) => map.has(k) };
  }
  if (kind === 'map-json') {
    // What a store that keeps serialized values (as BentoCache does by default) holds at least.
    const map = new Map<string, string>();
    return { put: (k, v) => map.set(k, JSON.stringify(v)), check: async (k) => map.has(k) };
  }
  if (kind === 'lru-raw') {
    const lru = new LRUCache<string, object>({ max: entries });
    return { put: (k, v) => lru.set(k, v), check: async (k) => lru.has(k) };
  }
  const subject = createSubject(kind as SubjectId, {
    url: 'redis://unused',
    tag: 'heap',
    maxEntries: entries,
  });
  return {
    put: (k, v) => subject.getOrSet(k, () => v, 3_600_000),
    check: async (k) => {
      let loaded = false;
      await subject.getOrSet(k, () => (loaded = true), 3_600_000);
      return !loaded;
    },
  };
}

const template = makeValue(valueBytes, 0);
const before = settle();
const store = build();
for (let i = 0; i < entries; i++) {
  const value = JSON.parse(JSON.stringify({ ...template, id: 1_000_000 + i })) as object;
  await store.put(`entry:${String(i).padStart(6, '0')}`, value);
}
const after = settle();
const probes = [0, Math.floor(entries / 2), entries - 1].map((i) => `entry:${String(i).padStart(6, '0')}`);
const kept = (await Promise.all(probes.map((k) => store.check(k)))).every(Boolean);
process.stdout.write(
  `${JSON.stringify({ bytesPerEntry: (after - before) / entries, heapMb: after / 2 ** 20, kept })}\n`,
);
process.exit(0);
