// The breaker's state machine on a fake clock.
import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../src/circuit-breaker.js';

function breakerAt(options: { failureThreshold: number; cooldownMs: number }) {
  const clock = { now: 0 };
  return { clock, breaker: new CircuitBreaker({ ...options, now: () => clock.now }) };
}

describe('CircuitBreaker', () => {
  it('opens after the threshold of consecutive failures, and only reports the opening once', () => {
    const { breaker } = breakerAt({ failureThreshold: 3, cooldownMs: 1_000 });
    expect([breaker.recordFailure(), breaker.recordFailure()]).toEqual([false, false]);
    expect(breaker.state).toBe('closed');
    expect(breaker.recordFailure()).toBe(true);
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBe(false);
    expect(breaker.recordFailure()).toBe(false);
  });

  it('a success in between resets the count', () => {
    const { breaker } = breakerAt({ failureThreshold: 2, cooldownMs: 1_000 });
    breaker.recordFailure();
    breaker.recordSuccess();
    expect(breaker.recordFailure()).toBe(false);
    expect(breaker.state).toBe('closed');
  });

  it('after the cooldown lets one probe through; its success closes, its failure re-opens for another cooldown', () => {
    const { breaker, clock } = breakerAt({ failureThreshold: 1, cooldownMs: 1_000 });
    breaker.recordFailure();
    clock.now = 999;
    expect(breaker.tryAcquire()).toBe(false);
    clock.now = 1_000;
    expect(breaker.state).toBe('half-open');
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false);
    breaker.recordFailure();
    expect(breaker.state).toBe('open');
    expect(breaker.retryInMs).toBe(1_000);
    clock.now = 2_000;
    expect(breaker.tryAcquire()).toBe(true);
    breaker.recordSuccess();
    expect(breaker.state).toBe('closed');
    expect(breaker.tryAcquire()).toBe(true);
  });

  it('a pause (Retry-After) opens at once for exactly that long, whatever the threshold', () => {
    const { breaker, clock } = breakerAt({ failureThreshold: 10, cooldownMs: 5_000 });
    expect(breaker.recordFailure(1_500)).toBe(true);
    clock.now = 1_499;
    expect(breaker.state).toBe('open');
    clock.now = 1_500;
    expect(breaker.state).toBe('half-open');
  });

  it('release() frees the probe slot without judging orq', () => {
    const { breaker, clock } = breakerAt({ failureThreshold: 1, cooldownMs: 10 });
    breaker.recordFailure();
    clock.now = 10;
    expect(breaker.tryAcquire()).toBe(true);
    breaker.release();
    expect(breaker.tryAcquire()).toBe(true);
  });
});
