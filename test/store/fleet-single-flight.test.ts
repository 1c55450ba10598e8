// Fleet-wide single flight, step by step over a command function of our own: what it asks Redis, and when it gives up waiting.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SharedStoreError } from '../../src/errors/shared-store-error.js';
import { fleetSingleFlight } from '../../src/store/fleet-single-flight.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { OrqIdentity } from '../../src/types.js';

const stored = '{"v":1,"at":7,"identity":{"id":"contact_u1","externalId":"u1"}}';

/** A store whose Redis answers `lease` to SET NX, `read()` to GET, OK to the rest; the commands it got, by name. */
function storeAnswering(lease: 'OK' | null, read: () => unknown) {
  const sent: string[][] = [];
  const reports: SharedStoreError[] = [];
  const store = new RedisStore({
    prefix: 'test:', scope: 'ws1', commandTimeoutMs: 200, report: (error) => reports.push(error),
    send: async (args) => {
      sent.push(args);
      if (args[0] === 'SET' && args.includes('NX')) return lease;
      if (args[0] === 'GET') return read();
      return 'OK';
    },
  });
  const names = () => sent.map((args) => (args[0] === 'SET' ? (args.includes('NX') ? 'LEASE' : 'WRITE') : args[0]));
  return { store, sent, names, reports };
}

function counting() {
  const work = { calls: 0, run: async (): Promise<OrqIdentity> => {
    work.calls += 1;
    return { id: 'contact_u1', externalId: 'u1' };
  } };
  return work;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('fleet single flight', () => {
  it('a waiter polls after 10, 20, 40 and 80 ms, then looks the user up itself when the next one would pass its deadline (a poll ending on it still goes)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { store, sent, names } = storeAnswering(null, () => null);
    const work = counting();
    const now = Date.now();
    const result = await fleetSingleFlight(store, 'u1', { leaseMs: 1_000, deadline: now + 80, keepMs: 60_000, work: work.run });
    expect(result).toEqual({ entry: { identity: { id: 'contact_u1', externalId: 'u1' }, fetchedAt: now }, source: 'own' });
    expect(work.calls).toBe(1);
    expect(names()).toEqual(['LEASE', 'GET', 'LEASE', 'GET', 'LEASE', 'GET', 'LEASE', 'GET', 'LEASE', 'WRITE']);
    expect(sent[0]?.slice(3)).toEqual(['NX', 'PX', '1000']);
    expect(sent.at(-1)).toEqual(['SET', 'test:{ws1:u1}:identity', `{"v":1,"at":${now},"identity":{"id":"contact_u1","externalId":"u1"}}`, 'PX', '60000']);
  });

  it("a waiter takes the holder's answer as soon as it is in the store", async () => {
    const { store, names } = storeAnswering(null, () => stored);
    const work = counting();
    const result = await fleetSingleFlight(store, 'u1', { leaseMs: 1_000, deadline: Date.now() + 2_000, keepMs: 60_000, work: work.run });
    expect(result).toEqual({ entry: { identity: { id: 'contact_u1', externalId: 'u1' }, fetchedAt: 7 }, source: 'fleet' });
    expect(work.calls).toBe(0);
    expect(names()).toEqual(['LEASE', 'GET']);
  });

  it('a waiter whose read fails looks the user up itself', async () => {
    const { store, reports } = storeAnswering(null, () => { throw new Error('connection lost'); });
    const work = counting();
    const result = await fleetSingleFlight(store, 'u1', { leaseMs: 1_000, deadline: Date.now() + 2_000, keepMs: 60_000, work: work.run });
    expect(result.source).toBe('own');
    expect(work.calls).toBe(1);
    expect(reports).toHaveLength(1);
  });

  it('a new lease holder that finds an answer written meanwhile uses it, and releases the lease', async () => {
    const { store, names } = storeAnswering('OK', () => stored);
    const work = counting();
    const result = await fleetSingleFlight(store, 'u1', { leaseMs: 1_000, deadline: Date.now() + 2_000, keepMs: 60_000, work: work.run });
    expect(result).toEqual({ entry: { identity: { id: 'contact_u1', externalId: 'u1' }, fetchedAt: 7 }, source: 'fleet' });
    expect(work.calls).toBe(0);
    expect(names()).toEqual(['LEASE', 'GET', 'EVAL']);
  });

  it('a lease holder whose read fails does the work itself', async () => {
    const { store } = storeAnswering('OK', () => { throw new Error('connection lost'); });
    const work = counting();
    const result = await fleetSingleFlight(store, 'u1', { leaseMs: 1_000, deadline: Date.now() + 2_000, keepMs: 60_000, work: work.run });
    expect(result.source).toBe('own');
    expect(work.calls).toBe(1);
  });

  it('a lease holder with nothing in the store does the work, writes its answer, then releases the lease', async () => {
    const { store, names } = storeAnswering('OK', () => null);
    const work = counting();
    expect((await fleetSingleFlight(store, 'u1', { leaseMs: 1_000, deadline: Date.now() + 2_000, keepMs: 60_000, work: work.run })).source).toBe('own');
    expect(work.calls).toBe(1);
    expect(names()).toEqual(['LEASE', 'GET', 'WRITE', 'EVAL']);
  });
});
