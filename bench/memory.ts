// Scenario 4, memory: 1 000 000 distinct users through a cache of 10 000; heap sampled after gc along the way.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { startOrqEmulator } from '../src/testing/index.js';
import { benchDir, log, median, repoRoot, round, type ScenarioResult } from './lib.js';
import type { MemoryReport, MemorySpec } from './memory-worker.js';

const spec: Omit<MemorySpec, 'url' | 'apiKey'> = {
  // Phase 1: the real path (SDK → emulator) through a cache 4× too small, so eviction runs on it too.
  realUsers: 2_000,
  realCacheMax: 500,
  realSampleEvery: 500,
  // Phase 2: the volume, set into the cache as a finished lookup would, then served by the middleware.
  totalUsers: 1_000_000,
  cacheMax: 10_000,
  cacheSampleEvery: 50_000,
};
/** The plateau holds if the heap at the end is within this much of the heap at 200 000 users. */
const plateauToleranceMiB = 2;

export async function runMemory(): Promise<ScenarioResult> {
  const emulator = await startOrqEmulator();
  try {
    log(`memory: ${spec.realUsers} users through the real path, then ${spec.totalUsers.toLocaleString('en-US')} through a cache of ${spec.cacheMax}`);
    // Its own process: a fresh heap, gc exposed, and the emulator's store (here) kept out of the measurement.
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(benchDir, 'memory-worker.ts')], {
      cwd: repoRoot,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, BENCH_MEMORY: JSON.stringify({ ...spec, url: emulator.url, apiKey: emulator.apiKey }) },
    });
    const [report] = (await Promise.race([
      once(child, 'message'),
      once(child, 'exit').then(([code]) => {
        throw new Error(`the memory worker exited with ${String(code)} before reporting`);
      }),
    ])) as [MemoryReport];
    await once(child, 'exit');

    const start = report.samples.find((sample) => sample.phase === 'start');
    const real = report.samples.filter((sample) => sample.phase === 'real');
    const cache = report.samples.filter((sample) => sample.phase === 'cache');
    const cacheStart = cache.find((sample) => sample.users === 0);
    const steady = cache.filter((sample) => sample.users >= 100_000);
    const plateau = median(steady.map((sample) => sample.heapUsedMiB));
    const at200k = cache.find((sample) => sample.users === 200_000)?.heapUsedMiB ?? Number.NaN;
    const atEnd = cache.at(-1)?.heapUsedMiB ?? Number.NaN;
    const growth = atEnd - at200k;
    const base = start?.heapUsedMiB ?? Number.NaN;
    const perIdentityBytes = ((plateau - (cacheStart?.heapUsedMiB ?? Number.NaN)) * 2 ** 20) / spec.cacheMax;
    const drained = Object.values(report.real.internals).every((size) => size === 0);
    const rows = [...real, ...cache].map((sample) => [
      sample.phase === 'real' ? `real path (cache ${spec.realCacheMax})` : `via cache (${spec.cacheMax.toLocaleString('en-US')})`,
      sample.users, round(sample.heapUsedMiB, 1), round(sample.heapUsedMiB - base, 1), sample.cacheSize,
    ]);
    return {
      name: 'memory',
      sections: [
        {
          title: 'Memory: heap used after gc, sampled along the way (MiB)',
          notes: [
            `gc exposed: ${report.gcExposed}. Start (imports loaded, nothing cached): ${round(base, 1)} MiB.`,
            `Real path: ${spec.realUsers} users through the SDK and the emulator (in another process) in ${Math.round(report.real.ms)} ms, ` +
              `${report.real.withIdentity} got an identity; afterwards ${JSON.stringify(report.real.internals)} (lookups/pending/refreshing), reports ${JSON.stringify(report.real.errors)}.`,
            `Via cache: each user's identity (parsed from wire JSON by identityFromWire, as orq's answer would be) is set into an LRUCache ` +
              `given as the \`cache\` option, then the middleware serves a fake req for it: ${report.cache.syncHits.toLocaleString('en-US')} ` +
              `synchronous hits of ${spec.totalUsers.toLocaleString('en-US')} in ${Math.round(report.cache.ms)} ms.`,
          ],
          headers: ['phase', 'users', 'heap MiB', 'Δ start', 'cached'],
          rows,
        },
        {
          title: 'Memory: plateau',
          notes: [],
          headers: ['measure', 'value'],
          rows: [
            ['plateau (median from 100 000 users on), MiB', round(plateau, 1)],
            ['growth 200 000 → 1 000 000 users, MiB', round(growth, 2)],
            [`≈ bytes per cached identity (plateau − phase-2 start) / ${spec.cacheMax}`, Math.round(perIdentityBytes)],
            ['heap at phase-2 start (real-path middleware dropped), MiB', round(cacheStart?.heapUsedMiB ?? Number.NaN, 1)],
          ],
        },
      ],
      goals: [
        {
          goal: `heap plateaus (growth 200k → 1M users < ${plateauToleranceMiB} MiB)`,
          met: report.gcExposed && Math.abs(growth) < plateauToleranceMiB,
          detail: `${round(growth, 2)} MiB; plateau ${round(plateau, 1)} MiB`,
        },
        {
          goal: 'resolver keeps nothing per user once lookups settle',
          met: drained,
          detail: JSON.stringify(report.real.internals),
        },
      ],
      data: { spec, report, plateauMiB: plateau, growthMiB: growth, perIdentityBytes },
    };
  } finally {
    await emulator.close();
  }
}
