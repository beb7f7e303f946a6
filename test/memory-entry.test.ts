import { describe, expect, it } from 'vitest';
import { VersionRegistry } from '../src/cache/versions.js';
import { MemoryEntry, MemoryTier } from '../src/tiers/memory-tier.js';

const DAY = 86_400_000;

describe('memory entry layout', () => {
  it('gives back the times it was built with, to the millisecond', () => {
    const created = Date.now() - 5_000;
    const e = new MemoryEntry(
      { a: 1 },
      created,
      created + 60_000,
      created + 3_600_000,
      created + 7_200_000,
      [],
      [],
    );
    expect([e.createdAt, e.freshUntil, e.expiresAt, e.graceUntil]).toEqual([
      created,
      created + 60_000,
      created + 3_600_000,
      created + 7_200_000,
    ]);
    expect(e.refreshAt).toBe(Number.POSITIVE_INFINITY);
  });

  it('computes the refresh point from the fraction, once: a started refresh is not started again', () => {
    const created = Date.now();
    const e = new MemoryEntry('v', created, created + 1000, created + 1000, created + 1000, [], [], 0.8);
    expect(e.refreshAt).toBe(created + 800);
    e.refreshStarted();
    expect(e.refreshAt).toBe(Number.POSITIVE_INFINITY);
  });

  it('keeps the stale mark, the refresh mark and the trust epoch apart', () => {
    const now = Date.now();
    const e = new MemoryEntry('v', now, now + 10, now + 10, now + 10, [], [], 0.5, true);
    e.epoch = 12345;
    e.refreshStarted();
    expect([e.stale, e.epoch, e.refreshAt]).toEqual([true, 12345, Number.POSITIVE_INFINITY]);
    const fresh = new MemoryEntry('v', now, now + 10, now + 10, now + 10, [], []);
    fresh.epoch = 7;
    expect([fresh.stale, fresh.epoch]).toEqual([false, 7]);
  });

  it('keeps an entry created long ago exact when it is recent enough, and conservative beyond 24.8 days', () => {
    const now = Date.now();
    const older = now - 30 * DAY;
    const e = new MemoryEntry('v', older, now + 1000, now + 2 * DAY, now + 2 * DAY, [], []);
    // Counted as created no earlier than 24.8 days before the module loaded; its expiry moves no
    // later than it was, so the memory copy can only be dropped earlier than Redis's.
    expect(e.createdAt).toBeGreaterThan(older);
    expect(e.expiresAt).toBeLessThanOrEqual(now + 2 * DAY);
  });

  it('is invalid once a version it recorded changes', () => {
    const registry = new VersionRegistry(10);
    const tier = new MemoryTier(10, 1_000_000);
    const scope = { chain: [{ versionKey: 'v:root' }] } as never;
    const cells = registry.scopeChain(scope);
    const now = Date.now();
    tier.set(
      'k',
      new MemoryEntry('v', now, now + 60_000, now + 60_000, now + 60_000, cells, registry.snapshot(cells)),
      10,
    );
    expect(tier.get('k', now)?.value).toBe('v');
    registry.bumpLocally(cells[0]!, false);
    expect(tier.get('k', now)).toBeUndefined();
  });
});

describe('version registry bound', () => {
  const cellOf = (registry: VersionRegistry, key: string) =>
    registry.scopeChain({ chain: [{ versionKey: key }] } as never)[0]!;

  it('evicts the least recently used cell and poisons it, so entries pointing to it miss', () => {
    const registry = new VersionRegistry(2);
    const a = cellOf(registry, 'a');
    const b = cellOf(registry, 'b');
    registry.observe(a, '3');
    registry.observe(b, '4');
    cellOf(registry, 'a'); // a is now the most recently used
    cellOf(registry, 'c'); // over the bound: b goes
    expect(Number.isNaN(b.value)).toBe(true);
    expect(a.value).toBe(3);
  });

  it('clear() poisons every cell', () => {
    const registry = new VersionRegistry(10);
    const a = cellOf(registry, 'a');
    registry.observe(a, '1');
    registry.clear();
    expect(Number.isNaN(a.value)).toBe(true);
  });
});
