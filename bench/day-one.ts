// Day one (issue 19): an app whose users are all new to orq at once, against the emulator's rolling rate limit at a
// Pro-like 100 calls per window (the window shortened so a run takes a minute). Over 1 and 4 instances (4 share one
// Redis): registered users over time, 429s, calls per registered user, and request p99 against the same traffic with
// the middleware off. Writes bench/results/day-one.svg beside the usual tables.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startOrqEmulator, type OrqEmulator } from '../src/testing/index.js';
import { renderChart, type Panel, type Series } from '../soak/chart.js';
import { startFleet, type Answer, type FleetInstance } from '../test/fleet/fleet.js';
import { startRedisProcess, type RedisServer } from '../test/redis-process.js';
import { benchDir, log, quantile, round, sleep, userIds, type ScenarioResult, type Section } from './lib.js';

function envInteger(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a whole number ≥ 1, got ${JSON.stringify(process.env[name])}`);
  return value;
}

const users = envInteger('BENCH_DAY_ONE_USERS', 2_000);
/** orq's Pro plan: 100 calls per minute for API calls other than deployments. */
const limit = envInteger('BENCH_DAY_ONE_LIMIT', 100);
const windowMs = envInteger('BENCH_DAY_ONE_WINDOW_MS', 3_000);
/** Requests per second from the whole population: every user comes back about every users ÷ rate seconds. */
const rate = envInteger('BENCH_DAY_ONE_RATE', 200);
/** The physical limit at one call per user; the goal is 1.1 × this. */
const idealMs = (users / limit) * windowMs;
/** Every load loop is bounded: a run that has not registered everyone by then stops and says so. */
const maxRunMs = Math.max(3 * idealMs, 30_000);
const sampleMs = 500;
/** In-flight requests at most: a stalled app makes the driver wait instead of piling up sockets. */
const maxInFlight = 256;

type Goal = ScenarioResult['goals'][number];

interface Sample {
  atMs: number;
  registered: number;
  calls: number;
  backlog: number;
  requests: number;
  withIdentity: number;
  p99Ms: number;
}

interface RunResult {
  label: string;
  instances: number;
  off: boolean;
  /** When the last user's identity was created, from the first request; undefined if not within maxRunMs. */
  registeredInMs: number | undefined;
  registered: number;
  calls: number;
  tooManyRequests: number;
  requests: number;
  failedRequests: number;
  p99Ms: number;
  samples: Sample[];
}

export async function runDayOne(): Promise<ScenarioResult> {
  const redis = await startRedisProcess();
  const runs: RunResult[] = [];
  try {
    for (const instances of [1, 4]) {
      runs.push(await run(instances, false, redis));
      // The baseline lasts as long as the run it is compared with, so both see the same mix of first and later visits.
      runs.push(await run(instances, true, redis, runs.at(-1)?.registeredInMs ?? idealMs));
    }
  } finally {
    await redis.stop();
  }
  await writeFile(path.join(benchDir, 'results', 'day-one.svg'), chart(runs));
  return report(runs);
}

async function run(instances: number, off: boolean, redis: RedisServer, durationMs?: number): Promise<RunResult> {
  const label = `${instances} instance${instances === 1 ? '' : 's'}${off ? ', middleware off' : ''}`;
  log(`day-one: ${label}`);
  await redis.command('FLUSHALL');
  const emulator = await startOrqEmulator({ rateLimit: { calls: limit, windowMs }, latencyMs: 20 });
  // Only the window is given (orq's is a minute; ours is shortened): the calls per window are learned from orq's
  // headers, from the default start of 20 a minute. Redis only for the fleet: one instance has no one to share with.
  const fleet = await startFleet(instances, {
    orqUrl: emulator.url,
    apiKey: emulator.apiKey,
    ...(instances > 1 ? { redisUrl: redis.url, shared: { commandTimeoutMs: 1_000 } } : {}),
    options: { budget: { windowMs } },
    off,
  });
  try {
    return await drive(label, instances, off, fleet, emulator, durationMs);
  } finally {
    await Promise.all(fleet.map((instance) => instance.stop()));
    await emulator.close();
  }
}

async function drive(label: string, instances: number, off: boolean, fleet: FleetInstance[], emulator: OrqEmulator, durationMs: number | undefined): Promise<RunResult> {
  const population = userIds('day-one', users);
  const answers: Answer[] = [];
  const samples: Sample[] = [];
  let sent = 0;
  let inFlight = 0;
  let failedRequests = 0;
  let registeredInMs: number | undefined;
  let sampleFrom = 0;
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  const done = () => (durationMs === undefined ? registeredInMs !== undefined : elapsed() >= durationMs) || elapsed() >= maxRunMs;

  const sampler = (async () => {
    while (!done()) {
      await sleep(sampleMs);
      const registered = emulator.identities().length;
      if (registered >= users && registeredInMs === undefined) registeredInMs = lastCreateMs(emulator, started);
      const window = answers.slice(sampleFrom);
      sampleFrom = answers.length;
      const backlog = off ? 0 : (await Promise.all(fleet.map((instance) => instance.stats()))).reduce((sum, stats) => sum + stats.backlog, 0);
      samples.push({
        atMs: Math.round(elapsed()),
        registered,
        calls: identityCalls(emulator),
        backlog,
        requests: window.length,
        withIdentity: window.filter((answer) => answer.identity !== null).length,
        p99Ms: window.length === 0 ? 0 : round(quantile(window.map((answer) => answer.ms), 0.99), 1),
      });
    }
  })();

  // Open loop at `rate`, users in order (the first pass is every user's first request), each to the next instance.
  const pending = new Set<Promise<void>>();
  while (!done()) {
    const due = Math.floor((elapsed() / 1000) * rate);
    while (sent < due && inFlight < maxInFlight) {
      const user = population[sent % users] as string;
      const instance = fleet[(sent + Math.floor(sent / users)) % fleet.length] as FleetInstance;
      sent += 1;
      inFlight += 1;
      const request = instance.whoami(user).then((answer) => {
        inFlight -= 1;
        answers.push(answer);
        if (answer.status !== 200) failedRequests += 1;
        pending.delete(request);
      });
      pending.add(request);
    }
    await sleep(5);
  }
  await Promise.all(pending);
  await sampler;
  const calls = identityCalls(emulator);
  return {
    label,
    instances,
    off,
    registeredInMs,
    registered: emulator.identities().length,
    calls,
    tooManyRequests: emulator.calls.filter((call) => call.status === 429).length,
    requests: answers.length,
    failedRequests,
    p99Ms: round(quantile(answers.map((answer) => answer.ms), 0.99), 1),
    samples,
  };
}

/** Retrieves, creates and updates: the calls orq's identity limit counts (429s included: orq counted them too). */
function identityCalls(emulator: OrqEmulator): number {
  return emulator.calls.filter((call) => call.operation === 'retrieve' || call.operation === 'create' || call.operation === 'update').length;
}

function lastCreateMs(emulator: OrqEmulator, started: number): number {
  const creates = emulator.calls.filter((call) => call.operation === 'create' && typeof call.status === 'number' && call.status < 300);
  const last = Math.max(...creates.map((call) => call.at));
  return Math.round(last - (performance.timeOrigin + started));
}

function report(runs: RunResult[]): ScenarioResult {
  const goals: Goal[] = [];
  const rows: Array<Array<string | number>> = [];
  const idealWindows = users / limit;
  for (const measured of runs.filter((each) => !each.off)) {
    const baseline = runs.find((each) => each.off && each.instances === measured.instances);
    const windows = measured.registeredInMs === undefined ? undefined : measured.registeredInMs / windowMs;
    const perUser = measured.registered === 0 ? Infinity : measured.calls / measured.registered;
    rows.push([
      measured.label,
      measured.registered,
      windows === undefined ? `not within ${Math.round(maxRunMs / 1000)} s` : round(windows, 2),
      round(windows === undefined ? Infinity : windows / idealWindows, 3),
      measured.tooManyRequests,
      round(perUser, 3),
      measured.requests,
      measured.failedRequests,
      measured.p99Ms,
      baseline?.p99Ms ?? '–',
    ]);
    goals.push({
      goal: `${measured.label}: ${users} new users registered within 1.1 × users ÷ limit = ${round(1.1 * idealWindows, 1)} windows`,
      met: windows !== undefined && windows <= 1.1 * idealWindows,
      detail: windows === undefined ? `${measured.registered} registered in ${Math.round(maxRunMs / 1000)} s` : `${round(windows, 2)} windows (${round(windows / idealWindows, 3)} ×)`,
    });
    goals.push({ goal: `${measured.label}: no 429 from identity calls`, met: measured.tooManyRequests === 0, detail: `${measured.tooManyRequests} 429s` });
    goals.push({ goal: `${measured.label}: ≤ 1.05 calls per new user`, met: perUser <= 1.05, detail: `${round(perUser, 3)} calls per registered user` });
    goals.push({ goal: `${measured.label}: no request failed`, met: measured.failedRequests === 0, detail: `${measured.failedRequests} of ${measured.requests}` });
  }
  const section: Section = {
    title: 'Day one: every user new to orq at once',
    notes: [
      `${users} users, none known to orq; ${rate} requests/s from the whole population (users in order, so the first ${round(users / rate, 1)} s are every user's first request), to the instances in turn.`,
      `The emulator allows ${limit} identity calls per rolling ${windowMs} ms window (orq's Pro plan has 100 per 60 s), answers 429 past it and sends X-RateLimit-* on every answer.`,
      `The middleware has default options except \`budget: { windowMs: ${windowMs} }\` (the window only: the calls are learned from the headers); 4 instances share one Redis.`,
      `"windows" is the time from the first request to the last user's create, in windows; the physical limit at one call per user is users ÷ limit = ${idealWindows}.`,
      'p99 off: the same app and traffic with the middleware not mounted, for as long as the run it is compared with. Chart: bench/results/day-one.svg.',
    ],
    headers: ['run', 'registered', 'windows', '× limit', '429s', 'calls/user', 'requests', 'failed', 'p99 ms', 'p99 ms off'],
    rows,
  };
  return {
    name: 'day-one',
    sections: [section],
    goals,
    data: { users, limit, windowMs, rate, runs: runs.map(({ samples, ...rest }) => ({ ...rest, samples })) },
  };
}

function chart(runs: RunResult[]): string {
  const minutes = Math.max(...runs.map((each) => each.samples.at(-1)?.atMs ?? 0)) / 60_000;
  const points = (each: RunResult, pick: (sample: Sample) => number): Series['points'] => each.samples.map((sample) => [sample.atMs / 60_000, pick(sample)] as const);
  const measured = runs.filter((each) => !each.off);
  const ideal: Series = { label: 'limit: 1 call/user', dashed: true, points: [[0, 0], [idealMs / 60_000, users], [minutes, users]] };
  const panels: Panel[] = [
    { title: 'Users registered in orq', unit: 'users', series: [...measured.map((each) => ({ label: each.label, points: points(each, (sample) => sample.registered) })), ideal] },
    { title: 'Requests that carried an identity (each 0.5 s)', unit: '%', series: measured.map((each) => ({ label: each.label, points: points(each, (sample) => (sample.requests === 0 ? 0 : (100 * sample.withIdentity) / sample.requests)) })) },
    { title: 'Registration backlog, all instances', unit: 'users', series: measured.map((each) => ({ label: each.label, points: points(each, (sample) => sample.backlog) })) },
    { title: 'Request p99 (each 0.5 s)', unit: 'ms', series: runs.map((each) => ({ label: each.label, dashed: each.off, points: points(each, (sample) => sample.p99Ms) })) },
  ];
  return renderChart({
    title: `Day one: ${users} new users, ${limit} identity calls per ${windowMs / 1000} s window`,
    subtitle: 'default options (budget window shortened to match), learned limit, registration backlog, create-first order',
    minutes,
    panels,
    faults: [],
  });
}
