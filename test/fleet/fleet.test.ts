// The fleet: three app instances as separate processes, one Redis, one emulator; what orq sees and what requests get.
import { afterEach, expect, it, vi } from 'vitest';
import type { OrqEmulator } from '../../src/testing/index.js';
import { startEmulator } from '../helpers.js';
import { describeRedis, startRedis, type RedisServer } from '../redis.js';
import { startFleet, type Answer, type FleetInstance } from './fleet.js';

const running: FleetInstance[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((instance) => instance.stop()));
});

async function fleetOf(size: number, emulator: OrqEmulator, redis: RedisServer, options: Record<string, unknown> = {}): Promise<FleetInstance[]> {
  // A generous timeoutMs: these tests count orq calls; the waits themselves are measured by the bench. No budget:
  // it would hold back registrations on purpose (the fleet-wide 429 pause works without one).
  // A longer Redis deadline than the default 250 ms too: under the whole suite this machine stalls processes for seconds.
  const fleet = await startFleet(size, { orqUrl: emulator.url, apiKey: emulator.apiKey, redisUrl: redis.url, shared: { commandTimeoutMs: 3_000 }, options: { timeoutMs: 10_000, budget: false, ...options } });
  running.push(...fleet);
  // One anonymous request each, so the first measured ones do not pay for a cold HTTP path.
  await Promise.all(fleet.map((instance) => instance.whoami()));
  return fleet;
}

async function stopAll(fleet: FleetInstance[]): Promise<void> {
  await Promise.all(fleet.map((instance) => instance.stop()));
}

/** Every user's first request sent to every instance at once. */
function everyoneEverywhere(fleet: FleetInstance[], users: string[]): Promise<Answer[]> {
  return Promise.all(users.flatMap((user) => fleet.map((instance) => instance.whoami(user))));
}

const users = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => `${prefix}-${index}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Each instance is a Node process loading Express, the SDK and both Redis clients: seconds on a busy two-core machine.
vi.setConfig({ testTimeout: 90_000 });
const size = 3;

describeRedis('a fleet of three instances on one Redis', () => {
  it('concurrent first requests on every instance: 1 retrieve + 1 create per user in total', async () => {
    const emulator = await startEmulator({ latencyMs: 20 });
    const redis = await startRedis();
    const fleet = await fleetOf(size, emulator, redis);
    const newcomers = users('new', 25);

    const answers = await everyoneEverywhere(fleet, newcomers);
    expect((await Promise.all(fleet.map((instance) => instance.stats()))).flatMap((stats) => stats.errors.map((error) => error.message))).toEqual([]);
    expect(answers.filter((answer) => answer.status !== 200)).toEqual([]);
    expect(answers.filter((answer) => answer.identity === null)).toEqual([]);
    expect(emulator.count('retrieve')).toBe(newcomers.length);
    expect(emulator.count('create')).toBe(newcomers.length);
    expect((await Promise.all(fleet.map((instance) => instance.stats()))).flatMap((stats) => stats.errors)).toEqual([]);
  });

  it('every instance restarted cold with Redis warm: no orq call for known users, their first request carries the identity', async () => {
    const emulator = await startEmulator();
    const redis = await startRedis();
    const known = users('known', 20);
    const first = await fleetOf(size, emulator, redis);
    await everyoneEverywhere(first, known);
    // On a stalled machine a write can miss even the 3 s Redis deadline: say that, rather than "20 orq calls ≠ 0".
    expect((await Promise.all(first.map((instance) => instance.stats()))).flatMap((stats) => stats.errors.map((error) => error.message))).toEqual([]);
    await stopAll(first);
    const stored = (await redis.command('KEYS', '*identity*')).split('\r\n').filter((line) => line.includes('known-'));
    expect(stored, 'the first fleet stored every identity in Redis').toHaveLength(known.length);
    emulator.resetCalls();

    const second = await fleetOf(size, emulator, redis);
    const answers = await everyoneEverywhere(second, known);
    expect(answers.filter((answer) => answer.identity === null)).toEqual([]);
    expect(emulator.count()).toBe(0);
  });

  it('Redis killed mid-run and restarted: no failed request, registrations go on, shared again without a restart', async () => {
    const emulator = await startEmulator({ latencyMs: 10 });
    const redis = await startRedis();
    const timeoutMs = 2_000;
    const fleet = await fleetOf(size, emulator, redis, { timeoutMs });
    const answers: Answer[] = [];
    const round = async (name: string) => {
      answers.push(...(await everyoneEverywhere(fleet, [...users(name, 5), 'regular'])));
    };

    await round('before');
    await redis.kill();
    await round('during-a');
    await sleep(100);
    await round('during-b');
    await redis.restart();
    // The clients reconnect on their own and each store tries Redis again after its back-off.
    await sleep(1_500);
    await round('after');

    expect(answers.filter((answer) => answer.status !== 200)).toEqual([]);
    // Bounded by timeoutMs, with slack for a loaded machine: the bench measures the real figure.
    expect(Math.max(...answers.map((answer) => answer.ms))).toBeLessThan(timeoutMs + 1_000);
    // Registrations went on against orq while Redis was down, and are shared again after it came back.
    expect(emulator.identities().map((identity) => identity.external_id)).toEqual(expect.arrayContaining([...users('during-a', 5), ...users('during-b', 5)]));
    expect(await redis.command('KEYS', '*after-0*')).toContain('identity');
    const reports = (await Promise.all(fleet.map((instance) => instance.stats()))).flatMap((stats) => stats.errors);
    expect(reports.filter((report) => report.name !== 'SharedStoreError')).toEqual([]);
    // Once per back-off, not once per command: a handful per instance at most.
    expect(reports.length).toBeGreaterThanOrEqual(size);
    expect(reports.length).toBeLessThanOrEqual(size * 3);
  });

  it('a 429 seen by one instance pauses all of them until Retry-After', async () => {
    const emulator = await startEmulator();
    const redis = await startRedis();
    const fleet = await fleetOf(size, emulator, redis, { retries: 0 });
    const [first, ...others] = fleet as [FleetInstance, ...FleetInstance[]];
    emulator.inject({ operation: 'retrieve', kind: 'status', status: 429, headers: { 'retry-after': '2' }, times: 1 });
    expect((await first.whoami('limited')).identity).toBeNull();
    expect(emulator.count()).toBe(1);
    // The pause goes to Redis beside the answer, not before it: on a loaded machine the others could ask first.
    for (let tries = 0; !(await redis.command('KEYS', '*}:pause')).includes(':pause'); tries++) {
      if (tries > 100) throw new Error('the first instance never stored the pause');
      await sleep(10);
    }

    const paused = await Promise.all(others.map((instance, index) => instance.whoami(`paused-${index}`)));
    expect(paused.map((answer) => [answer.status, answer.identity])).toEqual(others.map(() => [200, null]));
    expect(emulator.count()).toBe(1);

    await sleep(2_100);
    const resumed = await Promise.all(others.map((instance, index) => instance.whoami(`paused-${index}`)));
    expect(resumed.every((answer) => answer.identity !== null)).toBe(true);
  });
});
