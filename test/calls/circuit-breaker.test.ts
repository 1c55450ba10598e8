// The breaker's state machine on a fake clock.
import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../src/calls/circuit-breaker.js';

function breakerAt(options: { failureThreshold: number; cooldownMs: number }) {
  const clock = { now: 0 };
  return { clock, breaker: new CircuitBreaker({ ...options, now: () => clock.now }) };
}

describe('CircuitBreaker', () => {
  it('opens after the threshold of consecutive failures, and only reports the opening once', () => {
    const { breaker } = breakerAt({ failureThreshold: 3, cooldownMs: 1_000 });
    expect([breaker.recordFailure('closed'), breaker.recordFailure('closed')]).toEqual([false, false]);
    expect(breaker.state).toBe('closed');
    expect(breaker.recordFailure('closed')).toBe(true);
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBeUndefined();
    // A call that was already out fails too: no second report.
    expect(breaker.recordFailure('closed')).toBe(false);
  });

  it('probing: only while half-open with the probe out', () => {
    const { clock, breaker } = breakerAt({ failureThreshold: 1, cooldownMs: 1_000 });
    expect(breaker.tryAcquire()).toBe('closed');
    expect(breaker.probing).toBe(false);
    breaker.recordFailure('closed');
    expect(breaker.probing).toBe(false);
    clock.now = 1_000;
    expect(breaker.probing).toBe(false);
    expect(breaker.tryAcquire()).toBe('probe');
    expect(breaker.probing).toBe(true);
    breaker.recordSuccess('probe');
    expect([breaker.state, breaker.probing]).toEqual(['closed', false]);
  });

  it('a success in between resets the count', () => {
    const { breaker } = breakerAt({ failureThreshold: 2, cooldownMs: 1_000 });
    breaker.recordFailure('closed');
    breaker.recordSuccess('closed');
    expect(breaker.recordFailure('closed')).toBe(false);
    expect(breaker.state).toBe('closed');
  });

  it('after the cooldown lets one probe through; its failure re-opens for another cooldown, its success closes', () => {
    const { breaker, clock } = breakerAt({ failureThreshold: 1, cooldownMs: 1_000 });
    breaker.recordFailure('closed');
    clock.now = 999;
    expect(breaker.tryAcquire()).toBeUndefined();
    clock.now = 1_000;
    expect(breaker.state).toBe('half-open');
    expect(breaker.tryAcquire()).toBe('probe');
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(breaker.recordFailure('probe')).toBe(true);
    expect(breaker.state).toBe('open');
    expect(breaker.retryInMs).toBe(1_000);
    clock.now = 2_000;
    expect(breaker.tryAcquire()).toBe('probe');
    breaker.recordSuccess('probe');
    expect(breaker.state).toBe('closed');
    expect(breaker.tryAcquire()).toBe('closed');
  });

  it('a success of a call that started before the opening does not end the pause', () => {
    const { breaker, clock } = breakerAt({ failureThreshold: 5, cooldownMs: 1_000 });
    breaker.recordFailure('closed', 30_000);
    breaker.recordSuccess('closed');
    clock.now = 29_999;
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBeUndefined();
  });

  it('a late failure of an earlier call neither frees the probe slot nor shortens the pause', () => {
    const { breaker, clock } = breakerAt({ failureThreshold: 1, cooldownMs: 1_000 });
    breaker.recordFailure('closed', 5_000);
    clock.now = 5_000;
    expect(breaker.tryAcquire()).toBe('probe');
    expect(breaker.recordFailure('closed')).toBe(false);
    expect(breaker.tryAcquire()).toBeUndefined();
  });

  it('a pause (Retry-After) opens at once for exactly that long, whatever the threshold', () => {
    const { breaker, clock } = breakerAt({ failureThreshold: 10, cooldownMs: 5_000 });
    expect(breaker.recordFailure('closed', 1_500)).toBe(true);
    clock.now = 1_499;
    expect(breaker.state).toBe('open');
    clock.now = 1_500;
    expect(breaker.state).toBe('half-open');
  });

  it('release() frees the probe slot without judging orq', () => {
    const { breaker, clock } = breakerAt({ failureThreshold: 1, cooldownMs: 10 });
    breaker.recordFailure('closed');
    clock.now = 10;
    expect(breaker.tryAcquire()).toBe('probe');
    breaker.release('probe');
    expect(breaker.tryAcquire()).toBe('probe');
  });

  it('goes through two open → half-open cycles: after a successful probe, the next opening lets a new probe out', () => {
    const { breaker, clock } = breakerAt({ failureThreshold: 2, cooldownMs: 1_000 });
    breaker.recordFailure('closed');
    expect(breaker.recordFailure('closed')).toBe(true);
    clock.now = 1_000;
    expect(breaker.tryAcquire()).toBe('probe');
    breaker.recordSuccess('probe');
    expect(breaker.state).toBe('closed');

    // The success reset the count: one failure is not enough to open again.
    expect(breaker.recordFailure('closed')).toBe(false);
    expect(breaker.recordFailure('closed')).toBe(true);
    expect(breaker.state).toBe('open');
    clock.now = 2_000;
    expect(breaker.state).toBe('half-open');
    expect(breaker.tryAcquire()).toBe('probe');
    expect(breaker.tryAcquire()).toBeUndefined();
    breaker.recordSuccess('probe');
    expect(breaker.tryAcquire()).toBe('closed');
  });

  it('a late failure below the threshold does not free the probe slot either', () => {
    const { breaker, clock } = breakerAt({ failureThreshold: 5, cooldownMs: 1_000 });
    breaker.recordFailure('closed', 5_000);
    clock.now = 5_000;
    expect(breaker.tryAcquire()).toBe('probe');
    expect(breaker.recordFailure('closed')).toBe(false);
    expect(breaker.tryAcquire()).toBeUndefined();
  });

  it('a late failure while a long pause runs does not shorten it to a cooldown', () => {
    const { breaker, clock } = breakerAt({ failureThreshold: 1, cooldownMs: 1_000 });
    expect(breaker.recordFailure('closed', 30_000)).toBe(true);
    expect(breaker.recordFailure('closed')).toBe(false);
    clock.now = 1_000;
    expect(breaker.state).toBe('open');
    expect(breaker.retryInMs).toBe(29_000);
    clock.now = 30_000;
    expect(breaker.state).toBe('half-open');
  });

  it('a late success while open does not reset the failure count: later late failures still extend the pause', () => {
    const { breaker, clock } = breakerAt({ failureThreshold: 2, cooldownMs: 1_000 });
    breaker.recordFailure('closed');
    breaker.recordFailure('closed');
    clock.now = 500;
    breaker.recordSuccess('closed');
    clock.now = 900;
    expect(breaker.recordFailure('closed')).toBe(false);
    clock.now = 1_000;
    expect(breaker.state).toBe('open');
    expect(breaker.retryInMs).toBe(900);
  });

  it('releasing a call that was not the probe leaves the probe slot taken', () => {
    const { breaker, clock } = breakerAt({ failureThreshold: 1, cooldownMs: 10 });
    breaker.recordFailure('closed');
    clock.now = 10;
    expect(breaker.tryAcquire()).toBe('probe');
    breaker.release('closed');
    expect(breaker.tryAcquire()).toBeUndefined();
  });
});
