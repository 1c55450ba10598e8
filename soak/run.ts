// `npm run soak -- --minutes N [--instances K] [--rate R]`: K app processes on one real redis-server, the orq emulator,
// one load driver, faults on a schedule, checks all along; a final JSON line on stdout, and the JSON and an SVG chart
// in bench/results/soak-<N>min.{json,svg}. Exits 1 when a request failed, a user got another's identity, or an app
// process had an unhandled rejection or exception. Everything it starts binds 127.0.0.1 on free ports and is
// stopped on exit, on failure and on SIGINT/SIGTERM.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startOrqEmulator, type OrqEmulator } from '../src/testing/index.js';
import { startRedisProcess, type RedisServer } from '../test/redis-process.js';
import { parseArgs, type SoakArgs } from './args.js';
import { renderChart } from './chart.js';
import { Checks } from './checks.js';
import { Driver } from './driver.js';
import { applyFault, FAULT_KINDS, planFaults, type FaultRecord } from './faults.js';
import { AppProcess, bundleApp } from './fleet.js';
import { mulberry32, Population } from './population.js';
import type { AppSample, Unhandled } from './protocol.js';
import { summarize, type MemorySample } from './summary.js';

const SAMPLE_EVERY_MS = 5_000;
const AUDIT_EVERY_MS = 60_000;

const log = (text: string) => process.stderr.write(`[soak] ${text}\n`);

let emulator: OrqEmulator | undefined;
let redis: RedisServer | undefined;
const apps: AppProcess[] = [];
let stopping = false;

/** Stops everything this run started; safe to call twice. */
async function shutdown(): Promise<void> {
  stopping = true;
  await Promise.allSettled(apps.map((app) => app.stop()));
  await redis?.stop().catch(() => undefined);
  await emulator?.close().catch(() => undefined);
}
// The last resort, synchronous: whatever ends this process, no app outlives it (redis-process.ts does the same for Redis).
process.once('exit', () => {
  for (const app of apps) app.killNow();
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping the apps, Redis and the emulator`);
    void shutdown().finally(() => process.exit(130));
  });
}

async function main(args: SoakArgs): Promise<number> {
  const runMs = args.minutes * 60_000;
  emulator = await startOrqEmulator({ latencyMs: 5 });
  redis = await startRedisProcess();
  const script = await bundleApp();
  const unhandled: Array<Unhandled & { index: number; atMs: number }> = [];
  let startedPerf = performance.now();
  const now = () => performance.now() - startedPerf;
  const events = {
    onUnhandled: (index: number, event: Unhandled) => {
      unhandled.push({ ...event, index, atMs: now() });
    },
    onUnexpectedExit: (index: number, code: number | null, signal: string | null) => {
      if (stopping) return;
      unhandled.push({ kind: 'uncaughtException', message: `app ${index} exited by itself (code ${String(code)}, signal ${String(signal)})`, index, atMs: now() });
    },
  };
  for (let index = 0; index < args.instances; index += 1) {
    // Both Redis clients the package supports, alternating.
    const client = index % 2 === 0 ? 'ioredis' : 'node-redis';
    apps.push(new AppProcess(script, { index, orqUrl: emulator.url, apiKey: emulator.apiKey, redisUrl: redis.url, client }, events));
  }
  await Promise.all(apps.map((app) => app.start()));
  log(`${args.instances} apps up (pids ${apps.map((app) => app.pid).join(', ')}), redis on ${redis.port}, orq emulator on ${emulator.url}; ${args.minutes} min at ${args.rate} req/s`);

  startedPerf = performance.now();
  const startedEpoch = Date.now();
  // Timeline slices of a minute, down to 5 s in short runs so even the CI run's chart has a shape.
  const checks = new Checks(startedEpoch, Math.min(60_000, Math.max(5_000, Math.round(runMs / 60 / 1000) * 1000)));
  const population = new Population({ seed: args.seed });
  const driver = new Driver({ rate: args.rate, llmShare: 0.3, requestTimeoutMs: 10_000, maxInFlight: 500 }, apps, population, checks, startedPerf, mulberry32(args.seed + 1));
  const schedule = planFaults(runMs, args.instances >= 2 ? FAULT_KINDS : FAULT_KINDS.filter((kind) => kind !== 'instance-kill'));
  const faults: FaultRecord[] = [];
  const memory: MemorySample[] = [];
  const population_: Array<{ atMs: number; active: number; away: number }> = [];
  /** onError counts of each process life (pid): a killed instance's are kept. */
  const errorsByLife = new Map<string, Record<string, number>>();
  const emulatorRef = emulator;

  const drain = () => {
    // Read and cleared in one synchronous step: nothing is lost, and the log stays small over hours.
    const calls = [...emulatorRef.calls];
    emulatorRef.resetCalls();
    checks.orq(calls);
  };
  let lastAudit = 0;
  const sampler = setInterval(() => {
    drain();
    const atMs = now();
    population_.push({ atMs, active: population.active, away: population.away });
    void Promise.all(apps.map(async (app) => [app, app.pid, await app.sample()] as const)).then((samples) => {
      for (const [app, pid, sample] of samples) {
        if (sample === undefined) continue;
        memory.push(memorySample(atMs, apps.indexOf(app), sample));
        errorsByLife.set(String(pid), sample.errorsByCode);
      }
    });
    if (atMs - lastAudit >= AUDIT_EVERY_MS) {
      lastAudit = atMs;
      checks.audit(emulatorRef.identities());
    }
  }, SAMPLE_EVERY_MS);

  const faultRun = (async () => {
    for (const planned of schedule.faults) {
      const waitMs = planned.atMs - now();
      if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
      if (stopping) return;
      log(`t+${(now() / 1000).toFixed(0)}s fault ${planned.kind} (${planned.durationMs} ms)`);
      faults.push(await applyFault(planned, { emulator: emulatorRef, redis: redis as RedisServer, apps }, now));
    }
  })();

  await driver.run(runMs);
  await faultRun;
  clearInterval(sampler);
  drain();
  checks.audit(emulatorRef.identities());
  const finalSamples = await Promise.all(apps.map(async (app) => [app.pid, await app.sample()] as const));
  for (const [pid, sample] of finalSamples) if (sample !== undefined) errorsByLife.set(String(pid), sample.errorsByCode);
  await shutdown();

  const errorsByCode: Record<string, number> = {};
  for (const counts of errorsByLife.values()) for (const [code, count] of Object.entries(counts)) errorsByCode[code] = (errorsByCode[code] ?? 0) + count;
  const { line, report, failedOn } = summarize({
    args, runMs, checks, memory, schedule, faults, unhandled, errorsByCode, population, driver,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${os.type()} ${os.release()}`, date: new Date(startedEpoch).toISOString() },
  });
  mkdirSync(args.out, { recursive: true });
  const base = path.join(args.out, `soak-${args.minutes}min`);
  writeFileSync(`${base}.json`, `${JSON.stringify({ ...report, populationSamples: population_ }, null, 2)}\n`);
  writeFileSync(`${base}.svg`, renderChart(report.chart));
  log(`wrote ${base}.json and ${base}.svg`);
  for (const text of [...report.failureExamples, ...report.violationExamples]) log(text);
  for (const event of unhandled) log(`app ${event.index} ${event.kind} at t+${(event.atMs / 1000).toFixed(1)}s: ${event.message}`);
  process.stdout.write(`${JSON.stringify(line)}\n`);
  if (failedOn.length > 0) {
    log(`FAILED: ${failedOn.join(', ')}`);
    return 1;
  }
  log('passed: no failed request, no wrong user, no unhandled rejection or exception');
  return 0;
}

function memorySample(atMs: number, index: number, sample: AppSample): MemorySample {
  return { atMs, index, rssMiB: sample.rssMiB, heapUsedMiB: sample.heapUsedMiB, cacheSize: sample.cacheSize, circuit: sample.circuit };
}

let code = 1;
try {
  code = await main(parseArgs(process.argv.slice(2)));
} catch (error) {
  log(`failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  await shutdown();
}
process.exit(code);
