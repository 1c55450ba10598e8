// The run's verdict: the final JSON line (the keys first), the full report written beside it, and which
// checks failed.
import type { SoakArgs } from './args.js';
import type { ChartData } from './chart.js';
import type { Bucket, Checks } from './checks.js';
import type { Driver } from './driver.js';
import type { FaultRecord, Schedule } from './faults.js';
import type { Population } from './population.js';
import type { Unhandled } from './protocol.js';
import { growthPct, median, round } from './stats.js';

export interface MemorySample {
  atMs: number;
  index: number;
  rssMiB: number;
  heapUsedMiB: number;
  cacheSize: number;
  circuit: string;
}

export interface SummaryInput {
  args: SoakArgs;
  runMs: number;
  checks: Checks;
  memory: readonly MemorySample[];
  schedule: Schedule;
  faults: readonly FaultRecord[];
  unhandled: ReadonlyArray<Unhandled & { index: number; atMs: number }>;
  errorsByCode: Record<string, number>;
  population: Population;
  driver: Driver;
  machine: Record<string, unknown>;
}

/**
 * Memory at the start (just after the warm-up) and at the end: the median of instance 0's samples over a window
 * of a twelfth of the run (30 s at least) at each end. Instance 0 is never killed, so its figures span the run.
 */
export function memoryWindow(samples: readonly MemorySample[], warmUpMs: number, runMs: number, key: 'rssMiB' | 'heapUsedMiB'): { start: number; end: number } {
  const windowMs = Math.max(30_000, runMs / 12);
  const first = samples.filter((sample) => sample.index === 0);
  const start = median(first.filter((sample) => sample.atMs >= warmUpMs && sample.atMs < warmUpMs + windowMs).map((sample) => sample[key]));
  const end = median(first.filter((sample) => sample.atMs >= runMs - windowMs).map((sample) => sample[key]));
  return { start, end };
}

/** The checks that fail the run (and CI), by the name of their key. */
export function failedChecks(figures: { failedRequests: number; wrongUser: number; unhandled: number; llmCallsUnattributed: number }): string[] {
  return (['failedRequests', 'wrongUser', 'unhandled', 'llmCallsUnattributed'] as const).filter((key) => figures[key] > 0).map((key) => `${key}=${figures[key]}`);
}

export function summarize(input: SummaryInput) {
  const { args, runMs, checks, memory, schedule, faults } = input;
  const rss = memoryWindow(memory, schedule.warmUpMs, runMs, 'rssMiB');
  const heap = memoryWindow(memory, schedule.warmUpMs, runMs, 'heapUsedMiB');
  const activeUserHours = checks.activeUserHours(runMs);
  const line = {
    minutes: args.minutes,
    requests: checks.requests,
    failedRequests: checks.failedRequests,
    wrongUser: checks.wrongUser,
    unhandled: input.unhandled.length,
    rssStartMiB: round(rss.start),
    rssEndMiB: round(rss.end),
    rssGrowthPct: round(growthPct(rss.start, rss.end)),
    callsPerActiveUserHour: round(checks.orqCalls / activeUserHours, 2),
    p99Ms: round(checks.p99Ms()),
    llmCallsUnattributed: checks.llmCallsUnattributed,
    heapStartMiB: round(heap.start),
    heapEndMiB: round(heap.end),
    heapGrowthPct: round(growthPct(heap.start, heap.end)),
    upkeepCallsPerActiveUserHour: round(checks.upkeepCalls / activeUserHours, 2),
    registrationCallsPerUser: round(checks.registrationCalls / Math.max(1, checks.registeredUsers), 2),
    orqCalls: checks.orqCalls,
    activeUserHours: round(activeUserHours, 1),
    registeredUsers: checks.registeredUsers,
    usersArrived: input.population.arrived,
    usersLeft: input.population.left,
    llmCalls: checks.llmCalls,
    llmCallsAnonymous: checks.llmCallsAnonymous,
    llmCallsMissing: checks.llmCallsMissing,
    faults: faults.length,
    instances: args.instances,
    rate: args.rate,
    achievedRate: round(checks.requests / (runMs / 1000)),
    driverSkipped: input.driver.skipped + input.driver.noInstance,
  };
  const failedOn = failedChecks(line);
  const timeline = checks.timeline();
  const report = {
    ...line,
    ok: failedOn.length === 0,
    failedOn,
    seed: args.seed,
    machine: input.machine,
    warmUpMs: schedule.warmUpMs,
    quietFromMs: schedule.quietFromMs,
    orqCallsByOperation: checks.orqCallsByOperation,
    orqCallsByStatus: checks.orqCallsByStatus,
    registrationCalls: checks.registrationCalls,
    upkeepCalls: checks.upkeepCalls,
    onErrorByCode: input.errorsByCode,
    faultLog: faults,
    unhandledEvents: input.unhandled,
    failureExamples: checks.failures,
    violationExamples: checks.violations,
    timeline,
    memorySamples: memory.map((sample) => ({ ...sample, rssMiB: round(sample.rssMiB), heapUsedMiB: round(sample.heapUsedMiB) })),
    chart: chartData(args, runMs, timeline, memory, faults, line),
  };
  return { line, report, failedOn };
}

function chartData(args: SoakArgs, runMs: number, timeline: readonly Bucket[], memory: readonly MemorySample[], faults: readonly FaultRecord[], line: { requests: number; failedRequests: number; wrongUser: number; unhandled: number; p99Ms: number; rssGrowthPct: number }): ChartData {
  const bucketMs = timeline.length > 1 ? (timeline[1] as Bucket).startMs : runMs;
  const mid = (row: Bucket) => Math.min(row.startMs + bucketMs / 2, runMs) / 60_000;
  const instances = [...new Set(memory.map((sample) => sample.index))].sort((a, b) => a - b);
  return {
    title: `Soak: ${args.minutes} min, ${args.instances} instances, ${args.rate} req/s`,
    subtitle: `${line.requests} requests, ${line.failedRequests} failed, ${line.wrongUser} wrong user, ${line.unhandled} unhandled; p99 ${line.p99Ms} ms; RSS growth after warm-up ${line.rssGrowthPct} %`,
    minutes: runMs / 60_000,
    faults,
    panels: [
      {
        title: 'Memory of each app process (MiB)',
        unit: 'MiB',
        series: instances.flatMap((index) => {
          const mine = memory.filter((sample) => sample.index === index);
          return [
            { label: `RSS ${index}`, points: mine.map((sample) => [sample.atMs / 60_000, sample.rssMiB] as const) },
            { label: `heap ${index}`, points: mine.map((sample) => [sample.atMs / 60_000, sample.heapUsedMiB] as const), dashed: true },
          ];
        }),
      },
      { title: 'Calls to orq (identity calls, fleet-wide), per minute', unit: 'calls/min', series: [{ label: 'calls/min', points: timeline.map((row) => [mid(row), row.orqCallsPerMinute] as const) }] },
      { title: `p99 latency of the driver's requests, per ${bucketMs / 1000} s (ms)`, unit: 'ms', series: [{ label: 'p99', points: timeline.map((row) => [mid(row), row.p99Ms] as const) }] },
      { title: 'Users registered in orq', unit: 'users', series: [{ label: 'registered', points: timeline.map((row) => [mid(row), row.registeredUsers] as const) }] },
    ],
  };
}
