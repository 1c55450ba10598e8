// The shared store against a real redis-server, through both clients: values, leases, deadlines, the breaker, error events.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SharedStoreError } from '../../src/errors/shared-store-error.js';
import { commandFunction, type SendCommand } from '../../src/store/command.js';
import { fleetSingleFlight } from '../../src/store/fleet-single-flight.js';
import { RedisStore, unavailable } from '../../src/store/redis-store.js';
import { pauseScript, releaseLeaseScript, takeBudgetScript } from '../../src/store/scripts.js';
import { makeSharedStore, workspaceScope } from '../../src/store/shared-options.js';
import { OptionChecker } from '../../src/options.js';
import type { OrqIdentity } from '../../src/types.js';
import { eventually } from '../helpers.js';
import { clientKinds, connectClient, describeRedis, startRedis, type RedisServer } from '../redis.js';

/** A budget ask that does not learn: the calls and share as the store's own tests give them. */
const ask3 = { calls: 3, share: 1, maxCalls: undefined };

function identity(externalId: string, id = `contact_${externalId}`): OrqIdentity {
  return Object.freeze({ id, externalId });
}

function storeOver(send: SendCommand, reports: SharedStoreError[] = [], commandTimeoutMs = 200): RedisStore {
  return new RedisStore({ send, prefix: 'test:', scope: 'ws1', commandTimeoutMs, report: (error) => reports.push(error) });
}

async function storeFor(kind: (typeof clientKinds)[number], redis: RedisServer, reports: SharedStoreError[] = []) {
  const client = await connectClient(kind, redis);
  const store = makeSharedStore(new OptionChecker('test'), { redis: client, prefix: 'test:', commandTimeoutMs: 200 }, { apiKey: 'key-1', serverURL: 'http://orq.test' }, (error) => reports.push(error));
  return { client, store: store as RedisStore, reports };
}

describeRedis('shared store on Redis', () => {
  it.each(clientKinds)('%s: stores small versioned JSON under a workspace- and user-tagged key, never the API key', async (kind) => {
    const redis = await startRedis();
    const { store } = await storeFor(kind, redis);
    await store.writeIdentity({ identity: identity('u1'), fetchedAt: 1_000 }, 60_000);

    const scope = workspaceScope('key-1', 'http://orq.test');
    const key = `test:{${scope}:u1}:identity`;
    expect(await redis.command('KEYS', '*')).toContain(key);
    expect(await redis.command('GET', key)).toContain('{"v":1,"at":1000,"identity":{"id":"contact_u1","externalId":"u1"}}');
    expect(await redis.command('KEYS', '*')).not.toContain('key-1');
    const ttl = Number((await redis.command('PTTL', key)).slice(1));
    expect(ttl).toBeGreaterThan(59_000);
    expect(await store.readIdentity('u1')).toEqual({ identity: identity('u1'), fetchedAt: 1_000 });
    expect(await store.readIdentity('nobody')).toBeUndefined();
  });

  it('reads another version, another user or garbage as absent', async () => {
    const redis = await startRedis();
    const { store } = await storeFor('node-redis', redis);
    const scope = workspaceScope('key-1', 'http://orq.test');
    await redis.command('SET', `test:{${scope}:a}:identity`, '{"v":2,"at":1,"identity":{"id":"c","externalId":"a"}}');
    await redis.command('SET', `test:{${scope}:b}:identity`, '{"v":1,"at":1,"identity":{"id":"c","externalId":"not-b"}}');
    await redis.command('SET', `test:{${scope}:c}:identity`, 'not json');
    expect(await store.readIdentity('a')).toBeUndefined();
    expect(await store.readIdentity('b')).toBeUndefined();
    expect(await store.readIdentity('c')).toBeUndefined();
  });

  it('keeps workspaces apart: another key or server URL sees none of the entries', () => {
    expect(workspaceScope('key-1', 'https://api.orq.ai')).not.toBe(workspaceScope('key-2', 'https://api.orq.ai'));
    expect(workspaceScope('key-1', 'https://api.orq.ai')).not.toBe(workspaceScope('key-1', 'https://eu.orq.ai'));
    expect(workspaceScope('key-1', 'https://api.orq.ai')).toMatch(/^[0-9a-f]{16}$/);
  });

  it.each(clientKinds)('%s: a lease is exclusive, released only by its owner, and expires on its own', async (kind) => {
    const redis = await startRedis();
    const { store } = await storeFor(kind, redis);
    const first = await store.acquireLease('u1', 'lookup', 300);
    expect(first).toMatchObject({ token: expect.any(String) });
    expect(await store.acquireLease('u1', 'lookup', 300)).toBeUndefined();

    await store.releaseLease('u1', 'lookup', { token: 'someone-else' });
    expect(await store.acquireLease('u1', 'lookup', 300)).toBeUndefined();
    await store.releaseLease('u1', 'lookup', first as { token: string });
    const second = await store.acquireLease('u1', 'lookup', 150);
    expect(second).toMatchObject({ token: expect.any(String) });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await store.acquireLease('u1', 'lookup', 150)).toMatchObject({ token: expect.any(String) });
  });

  it('gives every command its own deadline; a stalled Redis is skipped and reported once per back-off', async () => {
    const redis = await startRedis();
    const client = await connectClient('ioredis', redis);
    const send = commandFunction(client) as SendCommand;
    let sent = 0;
    const reports: SharedStoreError[] = [];
    const store = storeOver((args) => {
      sent += 1;
      return send(args);
    }, reports, 100);

    redis.freeze();
    try {
      const started = Date.now();
      expect(await store.readIdentity('u1')).toBe(unavailable);
      expect(Date.now() - started).toBeLessThan(400);
      expect(store.available).toBe(false);
      // Skipped without a command while the breaker is open.
      for (let i = 0; i < 5; i++) expect(await store.readIdentity('u1')).toBe(unavailable);
      expect(sent).toBe(1);
      expect(reports).toHaveLength(1);
      expect(reports[0]).toBeInstanceOf(SharedStoreError);
      expect(reports[0]?.message).toMatch(/GET failed: no answer within commandTimeoutMs \(100 ms\)\. For the next 1 s this process works alone/);
    } finally {
      redis.thaw();
    }
    // After the back-off, one probe goes and the store is back.
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    expect(await store.readIdentity('u1')).toBeUndefined();
    expect(store.available).toBe(true);
    expect(reports).toHaveLength(1);
  });

  it.each(clientKinds)('%s: Redis killed: no crash without an error listener of the app, one report, back after restart', async (kind) => {
    const redis = await startRedis();
    const { client, store, reports } = await storeFor(kind, redis);
    expect((client as unknown as { listenerCount(event: string): number }).listenerCount('error')).toBe(1);
    await store.writeIdentity({ identity: identity('u1'), fetchedAt: 1 }, 60_000);

    await redis.kill();
    await eventually(() => reports.length > 0, 'the lost connection to be reported');
    expect(await store.readIdentity('u1')).toBe(unavailable);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(reports).toHaveLength(1);

    await redis.restart();
    await eventually(() => store.available, 'the store to be tried again', 10_000);
    let answer: unknown = unavailable;
    for (let i = 0; i < 100 && answer === unavailable; i++) {
      answer = await store.readIdentity('u1');
      if (answer === unavailable) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // A restarted Redis without persistence is empty: the store works again, and the entry is gone.
    expect(answer).toBeUndefined();
  });

  it('leaves an app that listens for error events alone', async () => {
    const redis = await startRedis();
    const client = await connectClient('ioredis', redis);
    const listener = () => undefined;
    client.on('error', listener);
    makeSharedStore(new OptionChecker('test'), { redis: client }, { apiKey: 'k', serverURL: undefined }, () => undefined);
    expect(client.listeners('error')).toEqual([listener]);
  });

  it('rejects what is not a client, and a client whose key cannot be read without a namespace, at start-up', () => {
    const check = new OptionChecker('orqIdentity');
    expect(() => makeSharedStore(check, { redis: {} }, { apiKey: 'k', serverURL: undefined }, () => undefined)).toThrow(
      /invalid option `shared\.redis`, received an object; pass a connected node-redis client/,
    );
    expect(() => makeSharedStore(check, { redis: async () => 'OK' }, { apiKey: undefined, serverURL: undefined }, () => undefined)).toThrow(
      /`shared\.namespace`.*pass `namespace: 'name-of-the-workspace'`/,
    );
    expect(() => makeSharedStore(check, { redis: async () => 'OK', commandTimeoutMs: '1s' }, { apiKey: 'k', serverURL: undefined }, () => undefined)).toThrow(
      /`shared\.commandTimeoutMs`/,
    );
  });
});

describeRedis('fleet single flight', () => {
  async function fleetOf(size: number, redis: RedisServer) {
    const stores: RedisStore[] = [];
    for (let i = 0; i < size; i++) stores.push((await storeFor(i % 2 === 0 ? 'node-redis' : 'ioredis', redis)).store);
    return stores;
  }

  it('five instances miss the same user at once: one of them does the work, the others get its answer', async () => {
    const redis = await startRedis();
    const stores = await fleetOf(5, redis);
    let calls = 0;
    const work = async () => {
      calls += 1;
      await new Promise((resolve) => setTimeout(resolve, 100));
      return identity('u1');
    };
    const results = await Promise.all(stores.map((store) => fleetSingleFlight(store, 'u1', { leaseMs: 2_000, deadline: Date.now() + 2_000, keepMs: 60_000, work })));
    expect(calls).toBe(1);
    expect(results.map((result) => result.source).sort()).toEqual(['fleet', 'fleet', 'fleet', 'fleet', 'own']);
    expect(new Set(results.map((result) => result.entry.identity.id))).toEqual(new Set(['contact_u1']));
  });

  it('a holder that fails releases its lease and a waiter takes over at once', async () => {
    const redis = await startRedis();
    const [first, second] = await fleetOf(2, redis) as [RedisStore, RedisStore];
    let calls = 0;
    const failing = fleetSingleFlight(first, 'u1', {
      leaseMs: 5_000, deadline: Date.now() + 2_000, keepMs: 60_000,
      work: async () => {
        calls += 1;
        await new Promise((resolve) => setTimeout(resolve, 50));
        throw new Error('orq failed');
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    const started = Date.now();
    const waiting = fleetSingleFlight(second, 'u1', {
      leaseMs: 5_000, deadline: Date.now() + 2_000, keepMs: 60_000,
      work: async () => {
        calls += 1;
        return identity('u1');
      },
    });
    await expect(failing).rejects.toThrow('orq failed');
    expect((await waiting).source).toBe('own');
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(calls).toBe(2);
  });

  it('a holder that lost Redis strands no one: a waiter looks the user up itself once its patience ends', async () => {
    const redis = await startRedis();
    const [store] = await fleetOf(1, redis) as [RedisStore];
    // A lease nobody will write for or release (its holder lost Redis mid-lookup).
    expect(await store.acquireLease('u1', 'lookup', 60_000)).toBeDefined();
    const started = Date.now();
    const result = await fleetSingleFlight(store, 'u1', { leaseMs: 60_000, deadline: Date.now() + 200, keepMs: 60_000, work: async () => identity('u1') });
    expect(result.source).toBe('own');
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await store.readIdentity('u1')).toMatchObject({ identity: identity('u1') });
  });

  it('a holder that died keeps its lease only until leaseMs: then a waiter takes it', async () => {
    const redis = await startRedis();
    const [store] = await fleetOf(1, redis) as [RedisStore];
    expect(await store.acquireLease('u1', 'lookup', 200)).toBeDefined();
    let ran = 0;
    const result = await fleetSingleFlight(store, 'u1', { leaseMs: 200, deadline: Date.now() + 5_000, keepMs: 60_000, work: async () => {
      ran += 1;
      return identity('u1');
    } });
    expect(result.source).toBe('own');
    expect(ran).toBe(1);
  });

  it('without Redis the work runs here: never a failed lookup because the store is down', async () => {
    const redis = await startRedis();
    const [store] = await fleetOf(1, redis) as [RedisStore];
    await redis.kill();
    const result = await fleetSingleFlight(store, 'u1', { leaseMs: 400, deadline: Date.now() + 2_000, keepMs: 60_000, work: async () => identity('u1') });
    expect(result.source).toBe('own');
  });
});

/** A store over a command function of our own (a supported client shape): every command it sent, answered by `reply`. */
function scriptedStore(reply: (args: string[]) => unknown, reports: SharedStoreError[] = [], commandTimeoutMs = 200) {
  const sent: string[][] = [];
  const store = storeOver(async (args) => {
    sent.push(args);
    return reply(args);
  }, reports, commandTimeoutMs);
  return { store, sent, reports };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('shared store: the commands it sends and what it makes of the replies', () => {
  it('sends each command to the workspace- and user-tagged key, with whole milliseconds', async () => {
    const { store, sent } = scriptedStore((args) => (args[0] === 'SET' && args.includes('NX') ? 'OK' : 1));
    await store.writeIdentity({ identity: identity('u1'), fetchedAt: 5 }, 1_500.2);
    await store.deleteIdentity('u1');
    const lease = await store.acquireLease('u1', 'lookup', 300.5);
    await store.releaseLease('u1', 'lookup', lease as { token: string });
    await store.refundBudget('member-1');
    await store.pause(250.5);
    const token = `${store.instanceId}:1`;
    expect(lease).toEqual({ token });
    expect(token).toMatch(/^[0-9a-f]{16}:1$/);
    expect(sent).toEqual([
      ['SET', 'test:{ws1:u1}:identity', '{"v":1,"at":5,"identity":{"id":"contact_u1","externalId":"u1"}}', 'PX', '1501'],
      ['DEL', 'test:{ws1:u1}:identity'],
      ['SET', 'test:{ws1:u1}:lookup', token, 'NX', 'PX', '301'],
      ['EVAL', releaseLeaseScript, '1', 'test:{ws1:u1}:lookup', token],
      ['ZREM', 'test:{ws1}:budget', 'member-1'],
      ['EVAL', pauseScript, '1', 'test:{ws1}:pause', '251'],
    ]);
  });

  it('asks the fleet window for one call and reads its answer: granted with its member, full, or paused', async () => {
    const answers: unknown[] = [[1, 0, 3, 95], ['0', '-7', '0'], [-1, 400, 2, 0]];
    const { store, sent } = scriptedStore(() => answers.shift());
    const granted = await store.takeBudget(1_000.4, { calls: 3, share: 0.8, maxCalls: 100 });
    const member = `${store.instanceId}:1`;
    expect(sent[0]).toEqual([
      'EVAL', takeBudgetScript, '5', 'test:{ws1}:budget', 'test:{ws1}:pause', 'test:{ws1}:instances', 'test:{ws1}:limit', 'test:{ws1}:left',
      '1001', '3', member, store.instanceId, '0.8', '100',
    ]);
    expect(granted).toStrictEqual({ granted: true, waitMs: 0, paused: false, instances: 3, member, learnedLimit: 95 });
    // A negative wait or no instance count from a proxy reads as "ask again now" and "this one alone".
    expect(await store.takeBudget(1_000, ask3)).toStrictEqual({ granted: false, waitMs: 0, paused: false, instances: 1 });
    expect(await store.takeBudget(1_000, ask3)).toStrictEqual({ granted: false, waitMs: 400, paused: true, instances: 2 });
    // A lease token and a grant's member never repeat.
    expect(new Set(sent.map((args) => args[10])).size).toBe(3);
  });

  it('a budget reply it cannot read is reported like a failure, and the store is skipped', async () => {
    for (const [reply, shown] of [['OK', '"OK"'], [undefined, 'undefined'], ['x'.repeat(200), `"${'x'.repeat(79)}`]] as const) {
      const { store, reports } = scriptedStore(() => reply);
      expect(await store.takeBudget(1_000, ask3)).toBe(unavailable);
      expect(store.available).toBe(false);
      expect(reports.map((report) => report.message)).toEqual([
        `Shared store (Redis) budget script failed: unexpected reply ${shown}. For the next 1 s this process works alone: its own cache, its own single flight and its share of the call budget.`,
      ]);
    }
  });

  it('reads a value that is not a current, well-formed entry of this user as absent', async () => {
    const values: Record<string, unknown> = {
      good: '{"v":1,"at":7,"identity":{"id":"c","externalId":"good"}}',
      null: 'null',
      number: '5',
      text: '"good"',
      at: '{"v":1,"at":"7","identity":{"id":"c","externalId":"at"}}',
      version: '{"v":2,"at":7,"identity":{"id":"c","externalId":"version"}}',
      noIdentity: '{"v":1,"at":7,"identity":{"id":"c"}}',
      buffer: Buffer.from('{"v":1,"at":7,"identity":{"id":"c","externalId":"buffer"}}'),
      missing: null,
    };
    const { store } = scriptedStore((args) => values[(args[1] as string).replace(/^test:\{ws1:(.*)\}:identity$/, '$1')]);
    expect(await store.readIdentity('good')).toEqual({ identity: { id: 'c', externalId: 'good' }, fetchedAt: 7 });
    for (const key of Object.keys(values).filter((key) => key !== 'good')) expect([key, await store.readIdentity(key)]).toEqual([key, undefined]);
  });
});

describe('shared store: failures and back-off', () => {
  it('skips Redis after a failure, longer after each failed probe (1, 2, 4 … 30 s), and from one again once a probe succeeds', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    let failure: unknown = new Error('connection lost');
    const { store, sent, reports } = scriptedStore((args) => {
      if (failure !== undefined) throw failure;
      return args[0] === 'GET' ? null : 'OK';
    });
    expect(await store.readIdentity('u1')).toBe(unavailable);
    expect(reports[0]?.message).toBe(
      'Shared store (Redis) GET failed: connection lost. For the next 1 s this process works alone: its own cache, its own single flight and its share of the call budget.',
    );
    expect(reports[0]?.cause).toBe(failure);
    expect(store.available).toBe(false);
    expect(await store.readIdentity('u1')).toBe(unavailable);
    expect(sent).toHaveLength(1);
    // The first probe waits the first pause again; each failed probe doubles the next one.
    for (const pauseMs of [1_000, 1_000, 2_000, 4_000, 8_000, 16_000]) {
      vi.setSystemTime(Date.now() + pauseMs - 1);
      expect(store.available).toBe(false);
      vi.setSystemTime(Date.now() + 1);
      expect(store.available).toBe(true);
      await store.deleteIdentity('u1');
    }
    expect(reports.map((report) => report.retryInMs)).toEqual([1_000, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000]);
    expect(reports[1]?.message).toMatch(/^Shared store \(Redis\) DEL failed: connection lost\. For the next 1 s/);
    expect(reports[6]?.message).toMatch(/For the next 30 s/);
    vi.setSystemTime(Date.now() + 30_000);
    failure = undefined;
    expect(await store.readIdentity('u1')).toBeUndefined();
    expect(store.available).toBe(true);
    failure = 'not an Error';
    expect(await store.readIdentity('u1')).toBe(unavailable);
    expect(reports.slice(7).map((report) => [report.retryInMs, report.message.split('.')[0]])).toEqual([[1_000, 'Shared store (Redis) GET failed: not an Error']]);
  });

  it('a lease or a budget asked of a failing Redis is unavailable, never taken for another instance holding it or a reply to report', async () => {
    const { store, reports } = scriptedStore(() => {
      throw new Error('connection lost');
    });
    expect(await store.acquireLease('u1', 'lookup', 300)).toBe(unavailable);
    expect(await store.acquireLease('u1', 'lookup', 300)).toBe(unavailable);
    expect(await store.takeBudget(1_000, ask3)).toBe(unavailable);
    expect(reports.map((report) => report.message.split('.')[0])).toEqual(['Shared store (Redis) SET failed: connection lost']);
  });

  it('a budget asked while Redis is skipped is unavailable and reported as nothing, even when the skip ends before the answer is read', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { store, sent, reports } = scriptedStore(() => {
      throw new Error('connection lost');
    });
    expect(await store.readIdentity('u1')).toBe(unavailable);
    const asked = store.takeBudget(1_000, ask3);
    vi.setSystemTime(Date.now() + 1_000);
    expect(await asked).toBe(unavailable);
    expect(sent).toHaveLength(1);
    expect(reports).toHaveLength(1);
    // The skip is over: the next command is the probe.
    expect(store.available).toBe(true);
  });

  it('an answer to a command sent before Redis failed does not shorten the back-off: only a probe that succeeds does', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    let answerSlow: (reply: unknown) => void = () => undefined;
    const { store, reports } = scriptedStore((args) => {
      if (args[1] === 'test:{ws1:slow}:identity') return new Promise((resolve) => (answerSlow = resolve));
      throw new Error('connection lost');
    }, [], 60_000);
    const slow = store.readIdentity('slow');
    expect(await store.readIdentity('u1')).toBe(unavailable);
    vi.setSystemTime(Date.now() + 1_000);
    expect(await store.readIdentity('u1')).toBe(unavailable);
    // The failed probe doubled the next pause; the slow command's answer now comes in, from a Redis that works.
    answerSlow(null);
    expect(await slow).toBeUndefined();
    vi.setSystemTime(Date.now() + 1_000);
    expect(await store.readIdentity('u1')).toBe(unavailable);
    expect(reports.map((report) => report.retryInMs)).toEqual([1_000, 1_000, 2_000]);
  });

  it('a command answered leaves no timer behind to keep the process alive', async () => {
    const { store } = scriptedStore(() => null, [], 60_000);
    const timers = () => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
    const before = timers();
    expect(await store.readIdentity('u1')).toBeUndefined();
    expect(timers()).toBe(before);
  });

  it("a client's error event skips the store at once, reported once; not again while skipped or probing", async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { store, reports } = scriptedStore(() => null);
    store.connectionError(new Error('ECONNRESET'));
    expect(store.available).toBe(false);
    store.connectionError(new Error('ECONNREFUSED'));
    vi.setSystemTime(Date.now() + 1_000);
    expect(store.available).toBe(true);
    store.connectionError(new Error('ECONNREFUSED'));
    expect(store.available).toBe(true);
    expect(reports.map((report) => report.message.split('.')[0])).toEqual(['Shared store (Redis) connection failed: ECONNRESET']);
    // A command that works closes the breaker: the next lost connection is news again.
    expect(await store.readIdentity('u1')).toBeUndefined();
    store.connectionError(new Error('ECONNRESET'));
    expect(reports).toHaveLength(2);
  });
});
