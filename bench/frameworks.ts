// The adapters' hot path: every user cached, 1 000 users cycling; for Fastify, Hono and Koa, the adapter against the same
// framework's one-Map-lookup floor, in CPU per request (the measure) and in throughput; and the adapter with
// `context: false`, which shows what the request's AsyncLocalStorage context itself costs.
import type { FrameworkAppSpec, Framework } from './framework-app-server.js';
import { startOrqEmulator } from '../src/testing/index.js';
import {
  alternate, log, median, pairedRatio, ratioRow, round, settings, startAppProcess, summarise, userIds, userRequests, warmUsers,
  type AppHandle, type AppSpec, type RoundSample, type ScenarioResult, type Section,
} from './lib.js';

const userCount = 1_000;
const goalRatio = 0.95;
const frameworks: readonly Framework[] = ['fastify', 'hono', 'koa'];

/** CPU time of the app per request, in µs: the app's CPU share over its throughput. */
function cpuPerRequestUs(sample: RoundSample): number {
  return ((sample.appCpuPct / 100) * 1e6) / sample.reqPerSec;
}

function start(name: string, spec: FrameworkAppSpec): Promise<AppHandle> {
  return startAppProcess(name, spec as unknown as AppSpec, { script: 'framework-app-server.ts' });
}

export async function runFrameworks(): Promise<ScenarioResult> {
  const emulator = await startOrqEmulator();
  const users = userIds('fw', userCount);
  const sections: Section[] = [];
  const goals: ScenarioResult['goals'] = [];
  const data: Record<string, unknown> = {};
  try {
    for (const framework of frameworks) {
      const apps: AppHandle[] = [];
      try {
        log(`frameworks: starting ${framework} apps`);
        const orqSpec = { framework, variant: 'orq', orq: { url: emulator.url, apiKey: emulator.apiKey } } as const;
        const [floor, orq, noContext] = await Promise.all([
          start(`${framework} + Map lookup (floor)`, { framework, variant: 'map', mapUsers: { prefix: 'fw', count: userCount } }),
          start(`${framework} + orqIdentity`, orqSpec),
          start(`${framework} + orqIdentity, context: false`, { ...orqSpec, context: false }),
        ]);
        apps.push(floor, orq, noContext);
        await warmUsers(orq.url, users);
        await warmUsers(noContext.url, users);
        const callsAfterWarm = emulator.count();
        const samples = await alternate(apps, userRequests(users));
        const callsDuringLoad = emulator.count() - callsAfterWarm;
        const b = samples.get(floor) ?? [];
        const c = samples.get(orq) ?? [];
        // Floor CPU per request over the adapter's: 1 means free, the goal is ≥ 0.95.
        const floorOver = (samples: RoundSample[]) => {
          const ratios = samples.map((sample, index) => cpuPerRequestUs(b[index] as RoundSample) / cpuPerRequestUs(sample));
          return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), perRound: ratios.map((value) => round(value, 4)) };
        };
        const cpuRatio = floorOver(c);
        const cpuRatioNoContext = floorOver(samples.get(noContext) ?? []);
        const throughput = pairedRatio(c, b, 'reqPerSec');
        sections.push({
          title: `${framework}: orqIdentity against a Map lookup, 1 000 cached users cycling`,
          notes: [
            `${settings.rounds} rounds × ${settings.durationSec} s per app, order rotated each round, ${settings.connections} connections; ` +
              `orq calls during the measured load: ${callsDuringLoad}. CPU per request = app CPU time / requests served.`,
          ],
          headers: ['variant', 'req/s', 'p99', 'app CPU %', 'CPU µs/request', 'errors'],
          rows: [
            ...apps.map((app) => {
              const s = summarise(samples.get(app) ?? []);
              return [app.name, Math.round(s.reqPerSec), s.p99, Math.round(s.appCpuPct), round(median((samples.get(app) ?? []).map(cpuPerRequestUs)), 2), s.errors];
            }),
            ratioRow('CPU per request, floor/orqIdentity', cpuRatio),
            ratioRow('CPU per request, floor/orqIdentity with context: false', cpuRatioNoContext),
            ratioRow('req/s, orqIdentity/floor', throughput),
          ],
        });
        goals.push({
          goal: `${framework}: CPU per request, floor/orqIdentity >= ${goalRatio}`,
          met: cpuRatio.median >= goalRatio,
          detail: `median ${round(cpuRatio.median, 3)}, rounds ${cpuRatio.perRound.join(', ')}`,
        });
        goals.push({ goal: `${framework}: no orq call on the hot path`, met: callsDuringLoad === 0, detail: `${callsDuringLoad} calls during load` });
        data[framework] = { callsDuringLoad, cpuRatio, cpuRatioNoContext, throughput, samples: Object.fromEntries(apps.map((app) => [app.name, samples.get(app)])) };
      } finally {
        await Promise.all(apps.map((app) => app.close()));
      }
    }
    return { name: 'frameworks', sections, goals, data };
  } finally {
    await emulator.close();
  }
}
