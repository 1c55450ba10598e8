// The day-one example: a population new to orq, under a rate limit, registered without a 429 or a waiting request.
import { describe, expect, it } from 'vitest';
import { rehearse } from '../../examples/day-one/rehearse.js';

describe('examples/day-one', () => {
  it('registers every user of a wave larger than the budget through the backlog, attributing every request meanwhile', async () => {
    const report = await rehearse({ users: 120, calls: 30, windowMs: 1_000, drainTimeoutMs: 45_000 });
    expect(report).toMatchObject({ users: 120, registered: 120, rateLimited: 0, failedRequests: 0, wrongUser: 0, missingAfterDrain: 0 });
    // The wave did not fit in the budget: some users waited in the backlog, and it said when it was empty.
    expect(report.deferred).toBeGreaterThan(0);
    expect(report.drained).toMatchObject({ event: 'drained' });
    expect(report.drained?.registered).toBeGreaterThan(0);
    // Create first once the lookups were 404s in a row: well under the card's 2 calls per new user.
    expect(report.callsPerUser).toBeLessThanOrEqual(1.2);
  }, 60_000);

  it('needs no backlog when the wave fits in the budget', async () => {
    const report = await rehearse({ users: 10, calls: 100, windowMs: 60_000 });
    expect(report).toMatchObject({ registered: 10, deferred: 0, rateLimited: 0, wrongUser: 0, missingAfterDrain: 0, drained: undefined });
  });
});
