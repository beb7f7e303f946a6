import { describe, expect, it } from 'vitest';
import { Deadlines } from '../src/resilience/deadlines.js';
import { eventually } from './drivers/conformance.js';

// No upper bound on timing is asserted: a loaded machine may run timers late. What must hold is
// that a call times out, once, never before its deadline, and only if it was not settled.

describe('command deadlines on one timer', () => {
  it('times out only the calls left unsettled, each once, oldest first, never early', async () => {
    const deadlines = new Deadlines(30);
    const startedAt = performance.now();
    const timedOut: Array<{ call: number; afterMs: number }> = [];
    const calls = [0, 1, 2, 3].map((i) =>
      deadlines.add(startedAt, () => timedOut.push({ call: i, afterMs: performance.now() - startedAt })),
    );
    expect(deadlines.settle(calls[1]!)).toBe(true);
    expect(deadlines.settle(calls[3]!)).toBe(true);
    await eventually(() => timedOut.length === 2);
    expect(timedOut.map((t) => t.call)).toEqual([0, 2]);
    for (const { afterMs } of timedOut) expect(afterMs).toBeGreaterThanOrEqual(30);
    // A reply after the deadline is refused: the caller was already rejected.
    expect(deadlines.settle(calls[0]!)).toBe(false);
    expect(deadlines.settle(calls[1]!)).toBe(false);
  });

  it('keeps timing out calls started after the timer was armed, each after its own full timeout', async () => {
    const deadlines = new Deadlines(20);
    const timedOut: Array<{ call: string; afterMs: number }> = [];
    const first = performance.now();
    deadlines.add(first, () => timedOut.push({ call: 'first', afterMs: performance.now() - first }));
    await new Promise((resolve) => setTimeout(resolve, 10));
    const second = performance.now();
    deadlines.add(second, () => timedOut.push({ call: 'second', afterMs: performance.now() - second }));
    await eventually(() => timedOut.length === 2);
    expect(timedOut.map((t) => t.call)).toEqual(['first', 'second']);
    for (const { afterMs } of timedOut) expect(afterMs).toBeGreaterThanOrEqual(20);
  });

  it('times out a call left behind a long run of settled ones, and nothing else', async () => {
    const deadlines = new Deadlines(25);
    const fired: string[] = [];
    deadlines.add(performance.now(), () => fired.push('stuck'));
    for (let i = 0; i < 5000; i++) {
      deadlines.settle(deadlines.add(performance.now(), () => fired.push(`settled ${i}`)));
    }
    await eventually(() => fired.length > 0);
    expect(fired).toEqual(['stuck']);
  });

  it('a timeout handler that starts a new call gets that call timed out too', async () => {
    const deadlines = new Deadlines(15);
    let fired = 0;
    const chain = () => {
      fired++;
      if (fired < 3) deadlines.add(performance.now(), chain);
    };
    deadlines.add(performance.now(), chain);
    await eventually(() => fired === 3);
  });
});
