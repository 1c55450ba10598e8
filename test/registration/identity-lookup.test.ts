// IdentityLookup on its own, against the emulator: which calls finding one user costs, in either order, and what a
// failed create leaves for the next attempt.
import { describe, expect, it } from 'vitest';
import { CallPolicy } from '../../src/calls/policy.js';
import type { OrqIdentityError } from '../../src/errors/orq-identity-error.js';
import { resolveResolverConfig } from '../../src/options.js';
import { IdentityLookup, type LookupProgress } from '../../src/registration/identity-lookup.js';
import { LookupOrder, newUsersBeforeCreateFirst } from '../../src/registration/lookup-order.js';
import { Reporter } from '../../src/reporter.js';
import type { OrqEmulator } from '../../src/testing/index.js';
import { checkUser } from '../../src/user.js';
import { startEmulator } from '../helpers.js';

function lookupOn(emulator: OrqEmulator, order = new LookupOrder(false)) {
  const errors: OrqIdentityError[] = [];
  const config = resolveResolverConfig({ apiKey: emulator.apiKey, serverURL: emulator.url, budget: false, retries: 0 }, 'identity-lookup.test');
  const reporter = new Reporter<undefined>((error) => errors.push(error), undefined);
  const lookup = new IdentityLookup<undefined>({
    api: config.api, policy: new CallPolicy(config, reporter), reporter, order, store: undefined,
    lookupTimeoutMs: 2_000, staleMs: 60_000, metricsRefreshMs: undefined, maxUsers: 100,
  });
  const find = async (externalId: string) => {
    const progress: LookupProgress = { created: false, prepaid: undefined };
    const { identity } = await lookup.find(checkUser(externalId), undefined, progress, 'lookup');
    return { identity, created: progress.created };
  };
  return { find, errors, order };
}

const operations = (emulator: OrqEmulator) => emulator.calls.map((call) => call.operation);

describe('IdentityLookup', () => {
  it('a user orq knows costs one retrieve; a new one a retrieve, then a create', async () => {
    const emulator = await startEmulator();
    const known = emulator.seed({ externalId: 'known' });
    const { find } = lookupOn(emulator);
    expect(await find('known')).toMatchObject({ identity: { id: known._id, externalId: 'known' }, created: false });
    expect(operations(emulator)).toEqual(['retrieve']);
    emulator.resetCalls();
    expect(await find('newcomer')).toMatchObject({ identity: { externalId: 'newcomer' }, created: true });
    expect(operations(emulator)).toEqual(['retrieve', 'create']);
  });

  it('after a 404 and a failed create, the next attempt goes straight to create', async () => {
    const emulator = await startEmulator();
    const { find } = lookupOn(emulator);
    emulator.inject({ operation: 'create', kind: 'status', status: 503, times: 1 });
    await expect(find('unlucky')).rejects.toMatchObject({ name: 'OrqApiError' });
    expect(operations(emulator)).toEqual(['retrieve', 'create']);
    emulator.resetCalls();
    expect(await find('unlucky')).toMatchObject({ identity: { externalId: 'unlucky' }, created: true });
    expect(operations(emulator)).toEqual(['create']);
  });

  it('creating first: one call per new user; a user that existed costs a create refused and a retrieve, and the card\'s order is back', async () => {
    const emulator = await startEmulator();
    const existing = emulator.seed({ externalId: 'existing' });
    const order = new LookupOrder(true);
    for (let i = 0; i < newUsersBeforeCreateFirst; i++) order.retrieved(false);
    const { find } = lookupOn(emulator, order);
    expect(await find('wave-1')).toMatchObject({ identity: { externalId: 'wave-1' }, created: true });
    expect(operations(emulator)).toEqual(['create']);
    emulator.resetCalls();
    expect(await find('existing')).toMatchObject({ identity: { id: existing._id }, created: false });
    expect(operations(emulator)).toEqual(['create', 'retrieve']);
    expect(order.name).toBe('retrieve-first');
    expect(emulator.identities().filter((identity) => identity.external_id === 'existing')).toHaveLength(1);
  });
});
