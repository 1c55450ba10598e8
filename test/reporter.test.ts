// What reaches onError: each failure once, a repeating one once per window, and a flood summed up per window.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InvalidUserError, OrqIdentityError, OrqUnavailableError, RepeatedFailuresError } from '../src/index.js';
import { Reporter, reportBurst, reportWindowMs } from '../src/reporter.js';

interface Received { error: OrqIdentityError; context: string | undefined }

function reporterWith(memory?: { max: number; ttl: number }): { reporter: Reporter<string>; received: Received[] } {
  const received: Received[] = [];
  const reporter = new Reporter<string>((error, context) => received.push({ error, context }), memory);
  return { reporter, received };
}

const timeout = (user: string): OrqUnavailableError => new OrqUnavailableError(`no answer for ${user}`, 'timeout', user);

describe('a flood of one kind is summed up per window', () => {
  beforeEach(() => {
    // Date and setTimeout both: the window is measured with Date.now() and ended by a timer.
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it(`reports the first ${reportBurst} one by one, then counts, and flush() reports the count once with the last one and its context`, () => {
    const { reporter, received } = reporterWith();
    for (let index = 0; index < reportBurst + 5; index++) reporter.report(timeout(`u${index}`), `ctx-${index}`);
    expect(received.map(({ error }) => error.externalId)).toEqual(Array.from({ length: reportBurst }, (_, index) => `u${index}`));
    vi.setSystemTime(Date.now() + 4_000);
    reporter.flush();
    expect(received).toHaveLength(reportBurst + 1);
    const summary = received[reportBurst];
    expect(summary?.error).toBeInstanceOf(RepeatedFailuresError);
    expect(summary?.error).toMatchObject({ count: 5, windowMs: 4_000, externalId: `u${reportBurst + 4}` });
    expect(summary?.error.cause).toBeInstanceOf(OrqUnavailableError);
    expect(summary?.context).toBe(`ctx-${reportBurst + 4}`);
    // What was summed up is gone: a second flush has nothing to say.
    reporter.flush();
    expect(received).toHaveLength(reportBurst + 1);
  });

  it('a flush with nothing counted reports nothing, and a summary made at once says 1 ms, not 0', () => {
    const { reporter, received } = reporterWith();
    for (let index = 0; index < reportBurst; index++) reporter.report(timeout(`u${index}`), undefined);
    reporter.flush();
    expect(received).toHaveLength(reportBurst);
    for (let index = 0; index < reportBurst + 1; index++) reporter.report(timeout(`v${index}`), undefined);
    reporter.flush();
    expect(received.at(-1)?.error).toMatchObject({ name: 'RepeatedFailuresError', count: 1, windowMs: 1 });
  });

  it('the count is reported when the window ends, without a flush', () => {
    const { reporter, received } = reporterWith();
    for (let index = 0; index < reportBurst + 3; index++) reporter.report(timeout(`u${index}`), undefined);
    expect(received).toHaveLength(reportBurst);
    vi.advanceTimersByTime(reportWindowMs - 1);
    expect(received).toHaveLength(reportBurst);
    vi.advanceTimersByTime(1);
    expect(received.map(({ error }) => error.name).at(-1)).toBe('RepeatedFailuresError');
    expect(received.at(-1)?.error).toMatchObject({ count: 3, windowMs: reportWindowMs });
  });

  it('a new window starts exactly reportWindowMs after the first report, summing up the old one first', () => {
    const { reporter, received } = reporterWith();
    for (let index = 0; index < reportBurst + 2; index++) reporter.report(timeout(`u${index}`), undefined);
    vi.setSystemTime(Date.now() + reportWindowMs - 1);
    reporter.report(timeout('still-old'), undefined);
    expect(received).toHaveLength(reportBurst);
    vi.setSystemTime(Date.now() + 1);
    reporter.report(timeout('new-window'), undefined);
    expect(received.slice(reportBurst).map(({ error }) => error.name === 'RepeatedFailuresError' ? `summary of ${(error as RepeatedFailuresError).count}` : error.externalId))
      .toEqual(['summary of 3', 'new-window']);
    // The new window has its own burst: nine more are reported one by one.
    for (let index = 0; index < reportBurst - 1; index++) reporter.report(timeout(`w${index}`), undefined);
    expect(received).toHaveLength(2 * reportBurst + 1);
  });

  it('kinds are tallied apart: a flood of timeouts does not silence a different failure', () => {
    const { reporter, received } = reporterWith();
    for (let index = 0; index < reportBurst + 1; index++) reporter.report(timeout(`u${index}`), undefined);
    reporter.report(new InvalidUserError('the external id is empty', ''), undefined);
    expect(received.at(-1)?.error).toBeInstanceOf(InvalidUserError);
    expect(received).toHaveLength(reportBurst + 1);
  });
});

describe('reportOnce: one report per key within the memory', () => {
  it('reports a key once while it is remembered', () => {
    const { reporter, received } = reporterWith({ max: 10, ttl: 60_000 });
    reporter.reportOnce('timeout:a', timeout('a'), undefined);
    reporter.reportOnce('timeout:a', timeout('a'), undefined);
    reporter.reportOnce('timeout:b', timeout('b'), undefined);
    expect(received.map(({ error }) => error.externalId)).toEqual(['a', 'b']);
  });

  it('without a memory (failureMemoryMs: 0), every report goes through', () => {
    const { reporter, received } = reporterWith(undefined);
    reporter.reportOnce('timeout:a', timeout('a'), undefined);
    reporter.reportOnce('timeout:a', timeout('a'), undefined);
    expect(received).toHaveLength(2);
  });
});

describe('background failures', () => {
  it('an error already reported (or marked reported) is not reported again', () => {
    const { reporter, received } = reporterWith();
    const once = timeout('a');
    reporter.report(once, undefined);
    reporter.reportBackgroundFailure(once, 'a', undefined);
    const reportedInItsStead = new Error('counted by the circuit breaker');
    reporter.markReported(reportedInItsStead);
    reporter.reportBackgroundFailure(reportedInItsStead, 'a', undefined);
    expect(received.map(({ error }) => error)).toEqual([once]);
  });

  it('the circuit being open is not reported per user (it was, once, when it opened); other unavailability is', () => {
    const { reporter, received } = reporterWith();
    reporter.reportBackgroundFailure(new OrqUnavailableError('circuit open', 'circuit-open', 'a'), 'a', 'ctx');
    expect(received).toEqual([]);
    const failed = new OrqUnavailableError('no identity', 'failed', 'b');
    reporter.reportBackgroundFailure(failed, 'b', 'ctx');
    expect(received).toEqual([{ error: failed, context: 'ctx' }]);
  });

  it('something that is not ours is wrapped, saying whose lookup failed and why', () => {
    const { reporter, received } = reporterWith();
    const cause = new TypeError('cannot read properties of undefined');
    reporter.reportBackgroundFailure(cause, 'user "7"', undefined);
    expect(received).toHaveLength(1);
    expect(received[0]?.error).toBeInstanceOf(OrqUnavailableError);
    expect(received[0]?.error).toMatchObject({ reason: 'failed', externalId: 'user "7"', cause });
    expect(received[0]?.error.message).toBe('Unexpected failure while resolving user "user \\"7\\"": cannot read properties of undefined');
  });
});
