// Scenario 1, the hot path: every user cached, 1 000 users cycling; bare Express vs a Map-lookup floor vs orqIdentity.
import { startOrqEmulator } from '../src/testing/index.js';
import {
  alternate, log, pairedRatio, ratioRow, round, settings, startAppProcess, summarise, userIds, userRequests, warmUsers,
  type AppHandle, type ScenarioResult,
} from './lib.js';

const userCount = 1_000;
const goalRatio = 0.97;

/*
 * Each app runs in its own child process and autocannon runs here, in the parent. Why:
 * - autocannon is itself a busy JavaScript process; in the app's process it would share the event loop
 *   and the GC with the code under test, and its own cost would show up as the middleware's;
 * - on 2 cores, load generator and app then get one core each, and the app's CPU % tells whether it
 *   (and not autocannon) was the bottleneck;
 * - each variant keeps its own heap and JIT state, so running one variant does not warm or pollute the others.
 * All three apps stay up for the whole scenario (an idle app costs no CPU) and are loaded in turn.
 */
export async function runHotPath(): Promise<ScenarioResult> {
  const emulator = await startOrqEmulator();
  const users = userIds('hot', userCount);
  const apps: AppHandle[] = [];
  try {
    log('hot path: starting apps');
    const [bare, floor, orq] = await Promise.all([
      startAppProcess('(a) bare Express', { variant: 'bare' }),
      startAppProcess('(b) + Map lookup (floor)', { variant: 'map', mapUsers: { prefix: 'hot', count: userCount } }),
      startAppProcess('(c) + orqIdentity', { variant: 'orq', orq: { url: emulator.url, apiKey: emulator.apiKey } }),
    ]);
    apps.push(bare, floor, orq);
    log(`hot path: warming ${userCount} users through orq`);
    await warmUsers(orq.url, users);
    const callsAfterWarm = emulator.count();
    const cached = (await orq.stats()).cacheSize;

    const samples = await alternate(apps, userRequests(users));
    const callsDuringLoad = emulator.count() - callsAfterWarm;
    const a = samples.get(bare) ?? [];
    const b = samples.get(floor) ?? [];
    const c = samples.get(orq) ?? [];
    const throughput = pairedRatio(c, b, 'reqPerSec');
    const p99 = pairedRatio(c, b, 'p99');
    const vsBare = pairedRatio(c, a, 'reqPerSec');

    const rows = apps.map((app) => {
      const s = summarise(samples.get(app) ?? []);
      return [app.name, Math.round(s.reqPerSec), `${Math.round(s.reqPerSecMin)}–${Math.round(s.reqPerSecMax)}`, s.p50, s.p99,
        Math.round(s.appCpuPct), Math.round(s.loadgenCpuPct), s.errors];
    });
    return {
      name: 'hot-path',
      sections: [
        {
          title: 'Hot path: 1 000 cached users cycling',
          notes: [
            `${settings.rounds} rounds × ${settings.durationSec} s per app, order rotated each round, ${settings.connections} connections, ` +
              'Express 5, every app has the same auth stand-in (x-user → req.user) and GET / answering res.json.',
            'Medians over rounds; latencies in ms; CPU in % of one core (app ≈ 100 %: the app, not autocannon, was the bottleneck).',
          ],
          headers: ['variant', 'req/s', 'req/s range', 'p50', 'p99', 'app CPU %', 'loadgen CPU %', 'errors'],
          rows,
        },
        {
          title: 'Hot path: (c) orqIdentity relative to the others (paired per round)',
          notes: [`orq calls during the measured load: ${callsDuringLoad} (cache held ${String(cached)} identities).`],
          headers: ['ratio', 'median', 'min', 'max'],
          rows: [
            ratioRow('req/s (c)/(b)', throughput),
            ratioRow('p99 (c)/(b)', p99),
            ratioRow('req/s (c)/(a)', vsBare),
          ],
        },
      ],
      goals: [
        {
          goal: `throughput (c)/(b) >= ${goalRatio}`,
          met: throughput.median >= goalRatio,
          detail: `median ${round(throughput.median, 3)}, rounds ${throughput.perRound.join(', ')}`,
        },
        { goal: 'no orq call on the hot path', met: callsDuringLoad === 0, detail: `${callsDuringLoad} calls during load` },
      ],
      data: {
        users: userCount,
        cacheSize: cached,
        callsDuringLoad,
        samples: Object.fromEntries(apps.map((app) => [app.name, samples.get(app)])),
        summary: Object.fromEntries(apps.map((app) => [app.name, summarise(samples.get(app) ?? [])])),
        ratios: { throughputCOverB: throughput, p99COverB: p99, throughputCOverA: vsBare },
      },
    };
  } finally {
    await Promise.all(apps.map((app) => app.close()));
    await emulator.close();
  }
}
