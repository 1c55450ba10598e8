// Scenario 3, the outage: orq hangs; once the breaker is open, requests must cost about what bare Express costs.
import { startOrqEmulator } from '../src/testing/index.js';
import {
  alternate, log, pairedRatio, ratioRow, quantile, round, settings, sleep, startAppProcess, summarise, userIds, userRequests, whoamiEach,
  type AppHandle, type ScenarioResult,
} from './lib.js';

const goalP99Ratio = 1.05;
/** Small deadlines so the breaker trips in well under a second; a long cooldown so it stays open while measured. */
const outageOptions = {
  timeoutMs: 100,
  lookupTimeoutMs: 300,
  retries: 0,
  circuitBreaker: { failureThreshold: 5, cooldownMs: 3_600_000 },
};

export async function runOutage(): Promise<ScenarioResult> {
  const emulator = await startOrqEmulator();
  const apps: AppHandle[] = [];
  try {
    log('outage: starting apps');
    // The floor here is a Map middleware that finds none of these users: any middleware layer costs Express
    // something, and this separates that from what an open breaker costs on top.
    const [bare, floor, outage] = await Promise.all([
      startAppProcess('bare Express', { variant: 'bare' }),
      startAppProcess('+ Map lookup, always a miss (floor)', { variant: 'map', mapUsers: { prefix: 'not-these', count: 1_000 } }),
      startAppProcess('orqIdentity, breaker open', { variant: 'orq', orq: { url: emulator.url, apiKey: emulator.apiKey, options: outageOptions } }),
    ]);
    apps.push(bare, floor, outage);

    emulator.inject({ kind: 'hang' });
    const tripStarted = performance.now();
    // Distinct users, so each is its own lookup and its own timeout (one user's lookups are coalesced).
    const trip = await whoamiEach(outage.url, userIds('trip', 10), 10);
    let circuit = (await outage.stats()).circuit;
    while (circuit !== 'open' && performance.now() - tripStarted < 5_000) {
      await sleep(20);
      circuit = (await outage.stats()).circuit;
    }
    const tripMs = performance.now() - tripStarted;
    if (circuit !== 'open') throw new Error(`the breaker did not open after 10 hanging lookups (state ${String(circuit)})`);
    log(`outage: breaker open after ${Math.round(tripMs)} ms, ${emulator.count()} calls`);

    // Calls decided before the breaker opened may still be on their way to orq: let them land first.
    await sleep(outageOptions.lookupTimeoutMs);
    const callsBefore = emulator.count();
    const circuitChecks: string[] = [];
    // Users never seen: every request misses the cache and is passed through because the breaker is open.
    const users = userIds('outage', 1_000);
    const samples = await alternate(apps, userRequests(users), {
      check: async (app) => {
        if (app !== outage) return;
        circuitChecks.push(String((await outage.stats()).circuit));
      },
    });
    const callsDuring = emulator.count() - callsBefore;
    const stats = await outage.stats();
    const a = samples.get(bare) ?? [];
    const o = samples.get(outage) ?? [];
    const p99 = pairedRatio(o, a, 'p99');
    const p50 = pairedRatio(o, a, 'p50');
    const throughput = pairedRatio(o, a, 'reqPerSec');
    const f = samples.get(floor) ?? [];
    const p99Floor = pairedRatio(o, f, 'p99');
    const throughputFloor = pairedRatio(o, f, 'reqPerSec');
    const floorP99 = pairedRatio(f, a, 'p99');
    const alwaysOpen = circuitChecks.every((state) => state === 'open');
    const tripLatencies = trip.map((answer) => answer.ms);

    return {
      name: 'outage',
      sections: [
        {
          title: 'Outage: orq hanging, breaker open, 1 000 uncached users cycling',
          notes: [
            `Options: ${JSON.stringify(outageOptions)}. Tripped by 10 distinct users in ${Math.round(tripMs)} ms ` +
              `(their requests took p50 ${round(quantile(tripLatencies, 0.5), 0)} ms: timeoutMs, then on without identity).`,
            `${settings.rounds} rounds × ${settings.durationSec} s per app, alternating, ${settings.connections} connections. ` +
              `Circuit after each measured round: ${circuitChecks.join(', ')}; orq calls while open: ${callsDuring}.`,
          ],
          headers: ['variant', 'req/s', 'req/s range', 'p50', 'p99', 'app CPU %', 'loadgen CPU %', 'errors'],
          rows: apps.map((app) => {
            const s = summarise(samples.get(app) ?? []);
            return [app.name, Math.round(s.reqPerSec), `${Math.round(s.reqPerSecMin)}–${Math.round(s.reqPerSecMax)}`, s.p50, s.p99,
              Math.round(s.appCpuPct), Math.round(s.loadgenCpuPct), s.errors];
          }),
        },
        {
          title: 'Outage: breaker open relative to bare Express and to the floor (paired per round)',
          notes: [`onError reports during the whole scenario: ${JSON.stringify(stats.errors)}.`],
          headers: ['ratio', 'median', 'min', 'max'],
          rows: [
            ratioRow('p99 open/bare', p99),
            ratioRow('p50 open/bare', p50),
            ratioRow('req/s open/bare', throughput),
            ratioRow('p99 open/floor', p99Floor),
            ratioRow('req/s open/floor', throughputFloor),
            ratioRow('p99 floor/bare', floorP99),
          ],
        },
      ],
      goals: [
        {
          goal: `p99 with the breaker open within ${Math.round((goalP99Ratio - 1) * 100)} % of bare Express`,
          met: p99.median <= goalP99Ratio,
          detail: `median p99 ratio ${round(p99.median, 3)}, rounds ${p99.perRound.join(', ')}`,
        },
        {
          goal: `p99 with the breaker open within ${Math.round((goalP99Ratio - 1) * 100)} % of the Map floor (a middleware layer that finds no one)`,
          met: p99Floor.median <= goalP99Ratio,
          detail: `median p99 ratio ${round(p99Floor.median, 3)}, rounds ${p99Floor.perRound.join(', ')}`,
        },
        { goal: 'breaker open during every measured round, no orq call', met: alwaysOpen && callsDuring === 0, detail: `${circuitChecks.join(', ')}; ${callsDuring} calls` },
      ],
      data: {
        options: outageOptions,
        tripMs,
        tripLatencies,
        circuitChecks,
        callsDuring,
        errors: stats.errors,
        samples: Object.fromEntries(apps.map((app) => [app.name, samples.get(app)])),
        summary: Object.fromEntries(apps.map((app) => [app.name, summarise(samples.get(app) ?? [])])),
        ratios: { p99, p50, throughput, p99Floor, throughputFloor, floorP99 },
      },
    };
  } finally {
    await Promise.all(apps.map((app) => app.close()));
    await emulator.close();
  }
}
