import { describe, expect, it } from 'vitest';
import { Deadlines } from '../src/resilience/deadlines.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('command deadlines on one timer', () => {
  it('times out only the calls left unsettled, each once, oldest first', async () => {
    const deadlines = new Deadlines(30);
    const timedOut: number[] = [];
    const calls = [0, 1, 2, 3].map((i) => deadlines.add(performance.now(), () => timedOut.push(i)));
    expect(deadlines.settle(calls[1]!)).toBe(true);
    expect(deadlines.settle(calls[3]!)).toBe(true);
    await sleep(10);
    expect(timedOut).toEqual([]);
    await sleep(60);
    expect(timedOut).toEqual([0, 2]);
    // A reply after the deadline is refused: the caller was already rejected.
    expect(deadlines.settle(calls[0]!)).toBe(false);
    expect(deadlines.settle(calls[1]!)).toBe(false);
  });

  it('keeps timing out calls started after the first timer fired', async () => {
    const deadlines = new Deadlines(20);
    const timedOut: string[] = [];
    deadlines.add(performance.now(), () => timedOut.push('first'));
    await sleep(10);
    const second = performance.now();
    deadlines.add(second, () => timedOut.push(`second after ${Math.round(performance.now() - second)} ms`));
    await sleep(60);
    expect(timedOut).toHaveLength(2);
    expect(timedOut[0]).toBe('first');
    // Not early: the second call had its full 20 ms.
    expect(Number(/after (\d+)/.exec(timedOut[1]!)?.[1])).toBeGreaterThanOrEqual(19);
  });

  it('times out a call left behind a long run of settled ones', async () => {
    const deadlines = new Deadlines(25);
    let stuck = 0;
    deadlines.add(performance.now(), () => stuck++);
    for (let i = 0; i < 5000; i++) deadlines.settle(deadlines.add(performance.now(), () => stuck++));
    await sleep(70);
    expect(stuck).toBe(1);
  });

  it('a timeout handler that starts a new call gets that call timed out too', async () => {
    const deadlines = new Deadlines(15);
    let fired = 0;
    const chain = () => {
      fired++;
      if (fired < 3) deadlines.add(performance.now(), chain);
    };
    deadlines.add(performance.now(), chain);
    await sleep(150);
    expect(fired).toBe(3);
  });
});
