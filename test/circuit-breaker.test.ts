import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type CircuitState } from '../src/resilience/circuit-breaker.js';

function breaker(threshold = 3, openDurationMs = 1000) {
  let now = 0;
  const transitions: Array<[CircuitState, CircuitState]> = [];
  const b = new CircuitBreaker({
    failureThreshold: threshold,
    openDurationMs,
    now: () => now,
    onTransition: (from, to) => transitions.push([from, to]),
  });
  return { b, transitions, advance: (ms: number) => (now += ms) };
}

describe('circuit breaker', () => {
  it('opens after consecutive failures only', () => {
    const { b } = breaker(3);
    b.onFailure();
    b.onFailure();
    b.onSuccess();
    b.onFailure();
    b.onFailure();
    expect(b.state).toBe('closed');
    b.onFailure();
    expect(b.state).toBe('open');
    expect(b.tryAcquire()).toBe(false);
  });

  it('lets exactly one probe through after the open period, and closes on its success', () => {
    const { b, transitions, advance } = breaker(1, 1000);
    b.onFailure();
    advance(999);
    expect(b.tryAcquire()).toBe(false);
    advance(1);
    expect(b.tryAcquire()).toBe(true);
    expect(b.state).toBe('half-open');
    expect(b.tryAcquire()).toBe(false); // a second caller while the probe is out
    b.onSuccess();
    expect(b.state).toBe('closed');
    expect(b.tryAcquire()).toBe(true);
    expect(transitions).toEqual([
      ['closed', 'open'],
      ['open', 'half-open'],
      ['half-open', 'closed'],
    ]);
  });

  it('re-opens for a full period when the probe fails', () => {
    const { b, advance } = breaker(1, 1000);
    b.onFailure();
    advance(1000);
    expect(b.tryAcquire()).toBe(true);
    b.onFailure();
    expect(b.state).toBe('open');
    advance(999);
    expect(b.tryAcquire()).toBe(false);
    advance(1);
    expect(b.tryAcquire()).toBe(true);
  });
});
