// The fleet soak: a minute of mixed traffic over three instances while Redis dies and comes back every few seconds.
// Opt-in (ORQ_IDENTITY_FLEET_SOAK=1, set by .ci/run): it is long, and the short fleet tests cover each case once.
import { afterAll, expect, it, vi } from 'vitest';
import { startEmulator } from '../helpers.js';
import { describeRedis, startRedis } from '../redis.js';
import { startFleet, type Answer, type FleetInstance } from './fleet.js';

const enabled = process.env.ORQ_IDENTITY_FLEET_SOAK === '1';
const durationMs = Number(process.env.ORQ_IDENTITY_FLEET_SOAK_MS ?? 30_000);
vi.setConfig({ testTimeout: durationMs + 120_000 });

const running: FleetInstance[] = [];
afterAll(async () => {
  await Promise.all(running.splice(0).map((instance) => instance.stop()));
});

describeRedis('fleet soak', () => {
  it.runIf(enabled)(`${durationMs / 1000} s of traffic while Redis is killed every 4 s: no failed request, one identity per user everywhere`, async () => {
    const emulator = await startEmulator({ latencyMs: 5 });
    const redis = await startRedis();
    running.push(...(await startFleet(3, { orqUrl: emulator.url, apiKey: emulator.apiKey, redisUrl: redis.url, shared: { commandTimeoutMs: 1_000 }, options: { budget: false } })));
    const answers: Answer[] = [];
    const started = Date.now();
    let users = 0;
    /** Every identity id each user was given, on any instance. */
    const seen = new Map<string, Set<string>>();
    const chaos = (async () => {
      while (Date.now() - started < durationMs - 4_000) {
        await new Promise((resolve) => setTimeout(resolve, 2_500));
        await redis.kill();
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        await redis.restart();
      }
    })();
    while (Date.now() - started < durationMs) {
      // A new user now and then, and known ones the rest of the time, each on a random instance.
      if (Math.random() < 0.3) users += 1;
      const user = `soak-${Math.floor(Math.random() * (users + 1))}`;
      const batch = await Promise.all(running.map((instance) => (Math.random() < 0.5 ? instance.whoami(user) : undefined)));
      for (const answer of batch) {
        if (answer === undefined) continue;
        answers.push(answer);
        if (answer.identity !== null) seen.set(user, (seen.get(user) ?? new Set()).add(answer.identity));
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await chaos;

    expect(answers.filter((answer) => answer.status !== 200)).toEqual([]);
    // One identity per user whichever instance answered, through every outage and every refill from Redis.
    expect([...seen].filter(([, ids]) => ids.size > 1)).toEqual([]);
    expect(seen.size).toBeGreaterThan(0);
    expect(answers.length).toBeGreaterThan(100);
  });
});
if (!enabled) process.stderr.write('fleet soak skipped: set ORQ_IDENTITY_FLEET_SOAK=1 to run it (.ci/run does).\n');
