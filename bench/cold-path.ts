// Scenario 2, the cold path: N new users arrive at once and orq answers after 50 ms.
import http from 'node:http';
import { startOrqEmulator, type OrqEmulator } from '../src/testing/index.js';
import { resolveResolverConfig } from '../src/options.js';
import { log, quantile, round, sleep, startAppProcess, userIds, whoami, type ScenarioResult, type WhoamiAnswer } from './lib.js';

const latencyMs = 50;
const roundTrips = 2 * latencyMs;
/** The first request of a new user should cost about its two round trips (retrieve 404, create): allow 25 % on top. */
const goalAddedMs = roundTrips * 1.25;

interface Config {
  users: number;
  /** undefined: the default. */
  maxConcurrency?: number;
}

const defaultMaxConcurrency = resolveResolverConfig({ apiKey: 'bench' }, 'bench').maxConcurrency;

// A burst no larger than maxConcurrency shows what one new user costs; the larger ones show the queue the
// bound makes on purpose (it keeps a flood of new users from opening a socket each).
const configs: Config[] = [{ users: defaultMaxConcurrency }, { users: 200 }, { users: 1_000 }, { users: 1_000, maxConcurrency: 64 }];

interface ColdResult {
  users: number;
  maxConcurrency: number;
  first: { p50: number; p99: number; max: number; withIdentity: number };
  baseline: { p50: number; p99: number };
  added: { p50: number; p99: number };
  calls: { total: number; retrieves: number; creates: number; exactlyOneEach: number; moreThanOneEach: number; distribution: Record<string, number> };
  settleMs: number;
  /** App CPU from the burst to the last orq call, per orq call (mostly the SDK: request building, response validation). */
  appCpuMsPerCall: number;
  cachedAfter: number | null;
  errors: Record<string, number>;
  circuitAfter: string | null;
}

/** Per user, how many retrieves and creates reached the emulator. */
function callsPerUser(emulator: OrqEmulator): Map<string, { r: number; c: number }> {
  const perUser = new Map<string, { r: number; c: number }>();
  for (const call of emulator.calls) {
    let user: string | undefined;
    if (call.operation === 'retrieve') user = decodeURIComponent(call.path.split('/').pop() ?? '');
    else if (call.operation === 'create') user = (call.body as { external_id?: string } | undefined)?.external_id;
    if (user === undefined) continue;
    const entry = perUser.get(user) ?? { r: 0, c: 0 };
    if (call.operation === 'retrieve') entry.r++;
    else entry.c++;
    perUser.set(user, entry);
  }
  return perUser;
}

/** Resolves once no call has reached the emulator for `quietMs` (background lookups have finished), or after `maxMs`. */
async function settle(emulator: OrqEmulator, quietMs: number, maxMs: number): Promise<void> {
  const started = Date.now();
  let last = emulator.calls.length;
  let lastChange = Date.now();
  while (Date.now() - started < maxMs) {
    await sleep(50);
    if (emulator.calls.length !== last) {
      last = emulator.calls.length;
      lastChange = Date.now();
    } else if (Date.now() - lastChange >= quietMs) return;
  }
}

function burst(url: string, users: readonly string[], agent: http.Agent): Promise<WhoamiAnswer[]> {
  // All written in the same tick: the users arrive at once.
  return Promise.all(users.map((user) => whoami(url, user, agent)));
}

async function runConfig(config: Config): Promise<ColdResult> {
  const emulator = await startOrqEmulator({ latencyMs });
  const options = config.maxConcurrency === undefined ? {} : { maxConcurrency: config.maxConcurrency };
  const app = await startAppProcess('cold', { variant: 'orq', orq: { url: emulator.url, apiKey: emulator.apiKey, options } });
  // One keep-alive connection per user, opened beforehand with anonymous requests (no orq work), so the
  // burst measures the app and orq, not TCP handshakes or the listen backlog.
  const agent = new http.Agent({ keepAlive: true, maxSockets: config.users, maxFreeSockets: config.users });
  try {
    const anonymous = Array.from({ length: config.users }, () => '');
    await burst(app.url, anonymous, agent);
    const users = userIds(`cold-${config.users}-${config.maxConcurrency ?? 'default'}`, config.users);
    log(`cold path: ${config.users} new users at once (maxConcurrency ${config.maxConcurrency ?? `default ${defaultMaxConcurrency}`})`);
    // Warm-up with other new users: the JIT and the SDK's keep-alive sockets to orq are what a running app
    // already has; the measured figure is a user's first request, not the process's.
    const maxConcurrency = config.maxConcurrency ?? defaultMaxConcurrency;
    await burst(app.url, userIds(`warm-${config.users}-${maxConcurrency}`, maxConcurrency), agent);
    await settle(emulator, 300, 15_000);
    emulator.resetCalls();
    await app.mark();
    const burstStarted = Date.now();
    const first = await burst(app.url, users, agent);
    await settle(emulator, 500, 15_000);
    const settleMs = Date.now() - burstStarted - 500;
    // The baseline: the same burst with no orq work at all. A cached user costs microseconds more (scenario 1).
    const stats = await app.stats();
    const baseline = await burst(app.url, anonymous, agent);

    const perUser = callsPerUser(emulator);
    const distribution: Record<string, number> = {};
    let exactlyOneEach = 0;
    let moreThanOneEach = 0;
    for (const user of users) {
      const { r, c } = perUser.get(user) ?? { r: 0, c: 0 };
      distribution[`${r}R+${c}C`] = (distribution[`${r}R+${c}C`] ?? 0) + 1;
      if (r === 1 && c === 1) exactlyOneEach++;
      if (r > 1 || c > 1) moreThanOneEach++;
    }
    const firstMs = first.map((answer) => answer.ms);
    const baselineMs = baseline.map((answer) => answer.ms);
    const result: ColdResult = {
      users: config.users,
      maxConcurrency: config.maxConcurrency ?? defaultMaxConcurrency,
      first: {
        p50: quantile(firstMs, 0.5), p99: quantile(firstMs, 0.99), max: Math.max(...firstMs),
        withIdentity: first.filter((answer) => answer.identity !== null).length,
      },
      baseline: { p50: quantile(baselineMs, 0.5), p99: quantile(baselineMs, 0.99) },
      added: { p50: quantile(firstMs, 0.5) - quantile(baselineMs, 0.5), p99: quantile(firstMs, 0.99) - quantile(baselineMs, 0.99) },
      calls: {
        total: emulator.count(), retrieves: emulator.count('retrieve'), creates: emulator.count('create'),
        exactlyOneEach, moreThanOneEach, distribution,
      },
      settleMs,
      appCpuMsPerCall: stats.cpuMs / Math.max(1, emulator.count()),
      // Less the warm-up users, so the column counts this burst's users only.
      cachedAfter: stats.cacheSize === null ? null : stats.cacheSize - maxConcurrency,
      errors: stats.errors,
      circuitAfter: stats.circuit,
    };
    return result;
  } finally {
    agent.destroy();
    await app.close();
    await emulator.close();
  }
}

export async function runColdPath(): Promise<ScenarioResult> {
  const results: ColdResult[] = [];
  for (const config of configs) results.push(await runConfig(config));
  const label = (result: ColdResult): string => `${result.users} users, maxConcurrency ${result.maxConcurrency}`;
  const calls = results.map((result) => [
    label(result), round(result.calls.total / result.users, 3), result.calls.retrieves, result.calls.creates,
    `${result.calls.exactlyOneEach}/${result.users}`, result.calls.moreThanOneEach,
    Object.entries(result.calls.distribution).map(([key, count]) => `${key}: ${count}`).join(', '),
  ]);
  const latency = results.map((result) => [
    label(result), result.first.p50, result.first.p99, result.baseline.p50, result.baseline.p99,
    result.added.p50, result.added.p99, round(result.added.p50 / roundTrips, 2), round(result.added.p99 / roundTrips, 2),
    `${result.first.withIdentity}/${result.users}`, Math.round(result.settleMs), result.cachedAfter ?? 'n/a',
  ]);
  const defaults = results.filter((result) => result.maxConcurrency === defaultMaxConcurrency);
  const unqueued = defaults.filter((result) => result.users <= result.maxConcurrency);
  const noDuplicates = results.every((result) => result.calls.moreThanOneEach === 0);
  const exact = results.every((result) => result.calls.exactlyOneEach === result.users);
  const fast = unqueued.every((result) => result.added.p50 <= goalAddedMs);
  return {
    name: 'cold-path',
    sections: [
      {
        title: `Cold path: orq calls per new user (emulator latency ${latencyMs} ms)`,
        notes: [
          'All users of a burst are sent in the same tick over pre-opened keep-alive connections; the app has default options except maxConcurrency where shown, and no call budget (`budget: false`).',
          'Counted after background lookups settled (no call for 500 ms).',
        ],
        headers: ['burst', 'calls/user', 'retrieves', 'creates', 'exactly 1R+1C', 'users with >1 of a kind', 'distribution'],
        rows: calls,
      },
      {
        title: 'Cold path: latency of each new user\'s first request (ms)',
        notes: [
          `added = first request − baseline (the same burst, anonymous: no orq work); ÷RT = added ÷ ${roundTrips} ms (2 round trips of ${latencyMs} ms).`,
          'with id: first requests that got their identity (others waited timeoutMs = 2 000 ms and went on without); settle: burst start → last orq call.',
        ],
        headers: ['burst', 'first p50', 'first p99', 'base p50', 'base p99', 'added p50', 'added p99', 'p50 ÷RT', 'p99 ÷RT', 'with id', 'settle ms', 'cached'],
        rows: latency,
      },
      {
        title: 'Cold path: breaker, app CPU and onError reports after the burst',
        notes: ['app CPU: the app process, from the burst to the last orq call (includes serving the burst itself), divided by the orq calls made.'],
        headers: ['burst', 'circuit', 'app CPU ms per orq call', 'reports by code'],
        rows: results.map((result) => [label(result), result.circuitAfter ?? 'n/a', round(result.appCpuMsPerCall, 2),
          Object.entries(result.errors).map(([code, count]) => `${code}: ${count}`).join(', ') || 'none']),
      },
    ],
    goals: [
      { goal: 'never more than 1 retrieve + 1 create per new user (coalescing)', met: noDuplicates, detail: noDuplicates ? 'no duplicates in any burst' : 'duplicates seen' },
      {
        goal: 'exactly 1 retrieve + 1 create per new user',
        met: exact,
        detail: results.map((result) => `${label(result)}: ${result.calls.exactlyOneEach}/${result.users}`).join('; '),
      },
      {
        goal: `defaults, burst <= maxConcurrency: added first-request p50 <= ${goalAddedMs} ms (2 round trips + 25 %)`,
        met: fast,
        detail: unqueued.map((result) => `${result.users} users: +${round(result.added.p50, 0)} ms p50, +${round(result.added.p99, 0)} ms p99`).join('; '),
      },
    ],
    data: { latencyMs, results },
  };
}
