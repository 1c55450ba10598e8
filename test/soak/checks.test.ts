// The soak's checks, fed what the emulator really records: a wrong identity, an LLM call attributed to another user
// or to nobody, and a failed request must each be counted, and correct traffic must count as nothing.
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startOrqEmulator, type OrqEmulator } from '../../src/testing/index.js';
import { Checks, userOfCall, type Answer } from '../../soak/checks.js';

let emulator: OrqEmulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

const ok = (fields: Partial<Answer> & { user: string | undefined }, body: unknown): Answer => ({
  at: 1_000, requestId: 'r1', llm: false, ms: 3, status: 200, body, ...fields,
});

async function llmCall(target: OrqEmulator, requestId: string, identity: string | undefined): Promise<void> {
  const openai = new OpenAI({ apiKey: target.apiKey, baseURL: `${target.url}/v2/router`, maxRetries: 0 });
  const headers: Record<string, string> = { 'x-soak-request': requestId };
  if (identity !== undefined) headers['X-ORQ-IDENTITY-ID'] = identity;
  await openai.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { headers });
}

describe('Checks', () => {
  it('counts nothing for answers that carry their own user’s identity, and anonymous answers without one', () => {
    const checks = new Checks(0);
    checks.answer(ok({ user: 'alice' }, { identity: 'id-a', externalId: 'alice', llm: false }));
    checks.answer(ok({ user: 'alice' }, { identity: 'id-a', externalId: 'alice', llm: false }));
    checks.answer(ok({ user: 'bob' }, { identity: null, externalId: null, llm: false }));
    checks.answer(ok({ user: undefined }, { identity: null, externalId: null, llm: false }));
    expect({ requests: checks.requests, failed: checks.failedRequests, wrong: checks.wrongUser }).toEqual({ requests: 4, failed: 0, wrong: 0 });
  });

  it.each([
    ['another user’s external id', { user: 'alice' }, { identity: 'id-b', externalId: 'bob', llm: false }],
    ['an identity for an anonymous request', { user: undefined }, { identity: 'id-a', externalId: 'alice', llm: false }],
  ])('counts a wrong user: %s', (_name, fields, body) => {
    const checks = new Checks(0);
    checks.answer(ok(fields, body));
    expect(checks.wrongUser).toBe(1);
    expect(checks.violations).toHaveLength(1);
  });

  it('counts a wrong user when one user gets two identities, or two users one', () => {
    const checks = new Checks(0);
    checks.answer(ok({ user: 'alice' }, { identity: 'id-a', externalId: 'alice', llm: false }));
    checks.answer(ok({ user: 'alice' }, { identity: 'id-a2', externalId: 'alice', llm: false }));
    checks.answer(ok({ user: 'bob' }, { identity: 'id-a', externalId: 'bob', llm: false }));
    expect(checks.wrongUser).toBe(2);
  });

  it.each([
    ['a non-200 status', { status: 500 }, { identity: null }],
    ['no answer (reset, timeout)', { status: 0, error: 'TimeoutError' }, undefined],
    ['an LLM request answered without its call', { llm: true }, { identity: null, externalId: null, llm: false }],
  ])('counts a failed request: %s', (_name, fields, body) => {
    const checks = new Checks(0);
    checks.answer(ok({ user: 'alice', ...fields }, body));
    expect(checks.failedRequests).toBe(1);
    expect(checks.failures).toHaveLength(1);
  });

  it('matches each LLM call orq saw to its request’s user: right, wrong, missing and anonymous', async () => {
    emulator = await startOrqEmulator();
    const checks = new Checks(Date.now());
    checks.expectLlm('right', 'alice');
    checks.expectLlm('wrong', 'alice');
    checks.expectLlm('missing', 'alice');
    checks.expectLlm('anonymous', undefined);
    checks.expectLlm('never-sent', 'carol');
    await llmCall(emulator, 'right', 'alice');
    await llmCall(emulator, 'wrong', 'bob');
    await llmCall(emulator, 'missing', undefined);
    await llmCall(emulator, 'anonymous', undefined);
    checks.orq(emulator.calls);
    expect({
      llmCalls: checks.llmCalls,
      wrongUser: checks.wrongUser,
      unattributed: checks.llmCallsUnattributed,
      anonymous: checks.llmCallsAnonymous,
      missing: checks.llmCallsMissing,
    }).toEqual({ llmCalls: 4, wrongUser: 1, unattributed: 1, anonymous: 1, missing: 1 });
  });

  it('tells the calls that register a user from the calls that keep a known one, from what orq recorded', async () => {
    emulator = await startOrqEmulator();
    const headers = { authorization: `Bearer ${emulator.apiKey}`, 'content-type': 'application/json' };
    const id = 'user/with spaces';
    await (await fetch(`${emulator.url}/v2/identities/${encodeURIComponent(id)}`, { headers })).arrayBuffer();
    await (await fetch(`${emulator.url}/v2/identities`, { method: 'POST', headers, body: JSON.stringify({ external_id: id }) })).arrayBuffer();
    await (await fetch(`${emulator.url}/v2/identities/${encodeURIComponent(id)}`, { headers })).arrayBuffer();
    expect(emulator.calls.map((call) => userOfCall(call))).toEqual([id, id, id]);
    const checks = new Checks(Date.now());
    checks.orq(emulator.calls);
    expect({ registration: checks.registrationCalls, upkeep: checks.upkeepCalls, registered: checks.registeredUsers }).toEqual({ registration: 2, upkeep: 1, registered: 1 });
  });

  it('audits every identity handed out against orq’s own records', async () => {
    emulator = await startOrqEmulator();
    const alice = emulator.seed({ externalId: 'alice' });
    const checks = new Checks(0);
    checks.answer(ok({ user: 'alice' }, { identity: alice._id, externalId: 'alice', llm: false }));
    checks.answer(ok({ user: 'bob' }, { identity: 'contact_not_in_orq', externalId: 'bob', llm: false }));
    checks.audit(emulator.identities());
    expect(checks.wrongUser).toBe(1);
    expect(checks.violations[0]).toContain('bob');
  });

  it('sums active user-hours per hour-long slice of the run', () => {
    const checks = new Checks(0);
    for (const [at, user] of [[0, 'a'], [10, 'b'], [20, 'a'], [3_600_000, 'a']] as const) {
      checks.answer(ok({ user, at }, { identity: null, externalId: null, llm: false }));
    }
    // Two users in the first hour, one in the second half-hour slice.
    expect(checks.activeUserHours(5_400_000)).toBeCloseTo(2.5);
  });
});
