// Shared bench helpers: settings, statistics, the app child processes, the load generator and the report tables.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import type { OrqIdentity } from '../src/index.js';

export const benchDir = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(benchDir, '..');

function envNumber(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new RangeError(`${name} must be a number of at least ${min}, got ${JSON.stringify(raw)}`);
  return value;
}

/** Seconds per measured round and number of alternating rounds; the defaults keep `npm run bench` near 3 minutes. */
export const settings = {
  durationSec: envNumber('BENCH_DURATION', 5, 1),
  rounds: Math.round(envNumber('BENCH_ROUNDS', 5, 1)),
  /** Closed-loop load: enough connections to keep one app core saturated, few enough that p99 is not all queueing. */
  connections: Math.round(envNumber('BENCH_CONNECTIONS', 16, 1)),
};

export interface Machine {
  cpuModel: string;
  cores: number;
  totalMemGiB: number;
  os: string;
  node: string;
  date: string;
}

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    totalMemGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    date: new Date().toISOString(),
  };
}

// ---------------------------------------------------------------- statistics

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Linear-interpolated quantile, q in [0, 1]; NaN for no values. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  const lowValue = sorted[low] as number;
  return lowValue + ((sorted[high] as number) - lowValue) * (position - low);
}

export function round(value: number, digits = 2): number {
  if (!Number.isFinite(value)) return value;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** The order of variants in round `r`: a rotation, so no variant always runs first (warm caches, CPU boost) or last. */
export function rotation<T>(items: readonly T[], r: number): T[] {
  const shift = r % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

// ---------------------------------------------------------------- users

export function userIds(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, index) => `${prefix}-${String(index).padStart(7, '0')}`);
}

/** An identity shaped like one orqIdentity caches from the emulator (documented shape), frozen like the real ones. */
export function fakeIdentity(externalId: string, index: number): OrqIdentity {
  return Object.freeze({
    id: `contact_01JBENCH${String(index).padStart(18, '0')}`,
    externalId,
    workspaceId: '550e8400-e29b-41d4-a716-446655440000',
    tags: Object.freeze([]),
    metadata: Object.freeze({}),
    created: '2025-01-01T00:00:00.000Z',
    updated: '2025-01-01T00:00:00.000Z',
  });
}

// ---------------------------------------------------------------- app child processes

/** What bench/app-server.ts builds; sent to the child as JSON in BENCH_APP. */
export interface AppSpec {
  /** bare: auth stand-in + route; map: + one synchronous Map lookup (the floor); orq: + orqIdentity. */
  variant: 'bare' | 'map' | 'orq';
  /** For map: the ids whose identities the Map holds. */
  mapUsers?: { prefix: string; count: number };
  /** For orq: the emulator to use and options for orqIdentity (JSON-safe ones only). */
  orq?: { url: string; apiKey: string; options?: Record<string, unknown>; redisUrl?: string };
  /**
   * Load @orq-ai/node at start and make a client, as an app that uses the SDK for its LLM calls does; the orq
   * variant then passes that client to orqIdentity instead of using the default fetch transport.
   */
  loadSdk?: boolean;
  /**
   * Before listening, send orq's identity endpoints what orqIdentity's cold path sends for this many new users
   * (a retrieve, a create), with `fetch`: a floor app with the same outbound HTTP history, so what using fetch at
   * all costs the process's shared Node code (its inline caches) is not counted as the middleware's.
   */
  outboundFetch?: { url: string; apiKey: string; prefix: string; users: number };
}

export interface AppStats {
  circuit: 'closed' | 'open' | 'half-open' | null;
  /** onError reports so far, by error code. */
  errors: Record<string, number>;
  /** CPU time (user + system) of the app since the last `mark`, in ms, and the wall time it covers. */
  cpuMs: number;
  wallMs: number;
  heapUsedMiB: number;
  /** The heap V8 has grown to (live and garbage), which a large live heap lets grow further between major GCs. */
  heapTotalMiB: number;
  /** Garbage collection since the last `mark`: total pause time, longest pause, count (from PerformanceObserver 'gc'). */
  gcMs: number;
  gcMaxMs: number;
  gcCount: number;
  cacheSize: number | null;
}

/** The app's memory when idle: live heap after a full GC (needs --expose-gc), heap reserved, resident set. */
export interface IdleMemory {
  heapUsedMiB: number;
  heapTotalMiB: number;
  rssMiB: number;
}

export interface AppHandle {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
  /** Starts a new CPU-time window. */
  mark(): Promise<void>;
  stats(): Promise<AppStats>;
  idle(): Promise<IdleMemory>;
  close(): Promise<void>;
}

let messageId = 0;

export interface AppProcessOptions {
  /** Node flags (e.g. --cpu-prof). */
  execArgv?: string[];
  /** A command the Node process runs under, e.g. `['valgrind', '--tool=callgrind']`; its pid is then the wrapper's. */
  wrapper?: string[];
  /** How long `close` waits for the process to exit before SIGKILL; default 10 s. */
  exitTimeoutMs?: number;
  /** The node binary to run the app on; default `BENCH_NODE`'s (see `appNodePath`), else the bench's own. */
  nodePath?: string;
  /** The app's script under bench/; default `app-server.ts` (Express). */
  script?: string;
}

/** Starts bench/app-server.ts in its own Node process and waits for it to listen on 127.0.0.1. */
export async function startAppProcess(name: string, spec: AppSpec, options: AppProcessOptions = {}): Promise<AppHandle> {
  const { execArgv = [], wrapper = [], exitTimeoutMs = 10_000, nodePath = appNodePath(), script = 'app-server.ts' } = options;
  const nodeCommand = [nodePath, ...execArgv, '--import', 'tsx', path.join(benchDir, script)];
  const [command, ...args] = [...wrapper, ...nodeCommand] as [string, ...string[]];
  const child = spawn(command, args, {
    cwd: repoRoot,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, BENCH_APP: JSON.stringify(spec) },
  });
  const pending = new Map<number, (value: unknown) => void>();
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  child.on('message', (message: { id?: number; type?: string; value?: unknown }) => {
    if (message.id === undefined) return;
    pending.get(message.id)?.(message.value);
    pending.delete(message.id);
  });
  const [ready] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`app ${name} exited with ${String(code)} before listening`);
    }),
  ])) as [{ type: string; port: number }];
  if (ready.type !== 'ready') throw new Error(`app ${name} sent ${JSON.stringify(ready)} instead of ready`);

  function ask<T>(cmd: string): Promise<T> {
    if (exited) return Promise.reject(new Error(`app ${name} has exited`));
    const id = ++messageId;
    return new Promise<T>((resolve) => {
      pending.set(id, resolve as (value: unknown) => void);
      child.send({ id, cmd });
    });
  }

  return {
    name,
    url: `http://127.0.0.1:${ready.port}`,
    child,
    mark: async () => {
      await ask<unknown>('mark');
    },
    stats: () => ask<AppStats>('stats'),
    idle: () => ask<IdleMemory>('idle'),
    async close() {
      if (exited) return;
      const exit = once(child, 'exit');
      child.send({ id: ++messageId, cmd: 'exit' });
      const timer = setTimeout(() => child.kill('SIGKILL'), exitTimeoutMs);
      await exit;
      clearTimeout(timer);
    },
  };
}

/**
 * The node binary of a major version: this process's own when it is that version, else the official build from the
 * npm registry, installed on first use into .ci/node-<major> by .ci/node-bin (the same binaries CI tests on).
 */
export function nodeBinary(major: number): string {
  if (Number(process.versions.node.split('.')[0]) === major) return process.execPath;
  return execFileSync('bash', [path.join(repoRoot, '.ci', 'node-bin'), String(major)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

let benchNodePath: string | undefined;
/**
 * The node the scenarios' apps run on: `BENCH_NODE=24` runs them on the registry's Node 24 (the bench process,
 * autocannon and the emulator stay on this one), so any scenario, instructions included, can be measured there.
 */
export function appNodePath(): string {
  const major = process.env.BENCH_NODE;
  if (major === undefined || major === '') return process.execPath;
  benchNodePath ??= nodeBinary(envNumber('BENCH_NODE', 0, 18));
  return benchNodePath;
}

/** The version a node binary reports, e.g. v24.21.0. */
export function nodeVersion(nodePath: string): string {
  return execFileSync(nodePath, ['--version'], { encoding: 'utf8' }).trim();
}

// ---------------------------------------------------------------- load

export interface LoadStats {
  requests: number;
  reqPerSec: number;
  /** Latencies in ms, from autocannon's per-response timings (sub-millisecond, unlike its 1 ms histogram). */
  p50: number;
  p99: number;
  p999: number;
  errors: number;
  non2xx: number;
  /** CPU used by this (load generator) process while loading, in % of one core. */
  loadgenCpuPct: number;
}

/** Closed-loop load on `url` for `durationSec`, each request taken in turn from `requests` (e.g. one per user). */
export async function load(
  url: string,
  options: { durationSec: number; connections?: number; requests?: autocannon.Request[] },
): Promise<LoadStats> {
  const latencies: number[] = [];
  const cpuBefore = process.cpuUsage();
  const wallBefore = performance.now();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections: options.connections ?? settings.connections,
        pipelining: 1,
        duration: options.durationSec,
        requests: options.requests,
      },
      (error: unknown, done: autocannon.Result) => (error ? reject(error as Error) : resolve(done)),
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => {
      latencies.push(responseTime);
    });
  });
  const cpu = process.cpuUsage(cpuBefore);
  const loadgenCpuPct = ((cpu.user + cpu.system) / 1000 / (performance.now() - wallBefore)) * 100;
  return {
    loadgenCpuPct,
    requests: result.requests.total,
    reqPerSec: result.requests.total / result.duration,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    p999: quantile(latencies, 0.999),
    errors: result.errors,
    non2xx: result.non2xx,
  };
}

export interface RoundSample extends LoadStats {
  round: number;
  /** CPU used by the app process during the round, in % of one core (near 100 %: the app was the bottleneck). */
  appCpuPct: number;
}

/**
 * Loads each app in turn, `rounds` times, in a rotating order, after an unrecorded warm-up run of each
 * (JIT, connection setup). `check` runs after every measured round (e.g. to assert the breaker is still open).
 */
export async function alternate(
  apps: readonly AppHandle[],
  requests: autocannon.Request[],
  options: { rounds?: number; durationSec?: number; check?: (app: AppHandle, sample: RoundSample) => Promise<void> } = {},
): Promise<Map<AppHandle, RoundSample[]>> {
  const rounds = options.rounds ?? settings.rounds;
  const durationSec = options.durationSec ?? settings.durationSec;
  for (const app of apps) await load(app.url, { durationSec: Math.min(2, durationSec), requests });
  const samples = new Map<AppHandle, RoundSample[]>(apps.map((app) => [app, []]));
  for (let r = 0; r < rounds; r++) {
    for (const app of rotation(apps, r)) {
      await app.mark();
      const stats = await load(app.url, { durationSec, requests });
      const appStats = await app.stats();
      const sample: RoundSample = { ...stats, round: r, appCpuPct: (appStats.cpuMs / appStats.wallMs) * 100 };
      samples.get(app)?.push(sample);
      log(`  round ${r + 1}/${rounds} ${app.name}: ${Math.round(stats.reqPerSec)} req/s, p99 ${stats.p99.toFixed(2)} ms`);
      await options.check?.(app, sample);
    }
  }
  return samples;
}

export interface Summary {
  reqPerSec: number;
  reqPerSecMin: number;
  reqPerSecMax: number;
  p50: number;
  p99: number;
  appCpuPct: number;
  loadgenCpuPct: number;
  errors: number;
}

/** Medians over rounds (and the spread of throughput). */
export function summarise(samples: readonly RoundSample[]): Summary {
  const pick = (key: keyof RoundSample): number[] => samples.map((sample) => sample[key]);
  return {
    reqPerSec: median(pick('reqPerSec')),
    reqPerSecMin: Math.min(...pick('reqPerSec')),
    reqPerSecMax: Math.max(...pick('reqPerSec')),
    p50: median(pick('p50')),
    p99: median(pick('p99')),
    appCpuPct: median(pick('appCpuPct')),
    loadgenCpuPct: median(pick('loadgenCpuPct')),
    errors: pick('errors').reduce((sum, value) => sum + value, 0) + pick('non2xx').reduce((sum, value) => sum + value, 0),
  };
}

/** Round-by-round ratio of `key` between two apps measured back to back, so machine noise mostly cancels. */
export function pairedRatio(
  numerator: readonly RoundSample[],
  denominator: readonly RoundSample[],
  key: 'reqPerSec' | 'p50' | 'p99',
): { median: number; min: number; max: number; perRound: number[] } {
  const perRound = numerator.map((sample, index) => sample[key] / (denominator[index]?.[key] ?? Number.NaN));
  return { median: median(perRound), min: Math.min(...perRound), max: Math.max(...perRound), perRound: perRound.map((value) => round(value, 4)) };
}

/** A table row for a paired ratio: label, median, min, max. */
export function ratioRow(label: string, ratio: { median: number; min: number; max: number }): [string, number, number, number] {
  return [label, round(ratio.median, 3), round(ratio.min, 3), round(ratio.max, 3)];
}

/** One autocannon request per user, each carrying its `x-user` header; autocannon cycles through them. */
export function userRequests(users: readonly string[], urlPath = '/'): autocannon.Request[] {
  return users.map((user) => ({ method: 'GET', path: urlPath, headers: { 'x-user': user } }));
}

// ---------------------------------------------------------------- single requests

export interface WhoamiAnswer {
  user: string;
  status: number;
  /** The identity id the app attached, or null. */
  identity: string | null;
  /** From just before the request is written to the end of the response, in ms. */
  ms: number;
}

/** GET / as `user` (anonymously for '') through `agent` (keep-alive), timing it. */
export function whoami(baseUrl: string, user: string, agent: http.Agent): Promise<WhoamiAnswer> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const headers: Record<string, string> = user === '' ? {} : { 'x-user': user };
    const request = http.get(`${baseUrl}/`, { agent, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const ms = performance.now() - started;
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { identity: string | null };
        resolve({ user, status: response.statusCode ?? 0, identity: body.identity, ms });
      });
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

/**
 * Requests each user once with at most `concurrency` in flight; answers in user order.
 * Uses (and leaves open) `sharedAgent` when given, else a keep-alive agent of its own.
 */
export async function whoamiEach(baseUrl: string, users: readonly string[], concurrency: number, sharedAgent?: http.Agent): Promise<WhoamiAnswer[]> {
  const agent = sharedAgent ?? new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const answers: WhoamiAnswer[] = new Array<WhoamiAnswer>(users.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, users.length) }, async () => {
      while (next < users.length) {
        const index = next++;
        answers[index] = await whoami(baseUrl, users[index] as string, agent);
      }
    }),
  );
  if (sharedAgent === undefined) agent.destroy();
  return answers;
}

/** Fills an orq app's cache with `users` through the real path (bounded, retrying misses); throws if some never resolve. */
export async function warmUsers(baseUrl: string, users: readonly string[], concurrency = 8): Promise<void> {
  let missing = users;
  for (let attempt = 0; attempt < 3 && missing.length > 0; attempt++) {
    const answers = await whoamiEach(baseUrl, missing, concurrency);
    missing = answers.filter((answer) => answer.identity === null).map((answer) => answer.user);
  }
  if (missing.length > 0) throw new Error(`${missing.length} users could not be warmed, e.g. ${missing[0]}`);
}

// ---------------------------------------------------------------- reporting

export interface Section {
  title: string;
  /** Short prose under the title: settings, what the numbers mean. */
  notes: string[];
  headers: string[];
  rows: Array<Array<string | number>>;
}

export interface ScenarioResult {
  name: string;
  sections: Section[];
  goals: Array<{ goal: string; met: boolean | null; detail: string }>;
  /** The raw numbers, for latest.json. */
  data: unknown;
}

function cell(value: string | number): string {
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return value.toLocaleString('en-US', { maximumFractionDigits: Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 3 });
}

export function textTable(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((row) => row.map(cell))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  const line = (row: string[]): string => row.map((text, column) => (column === 0 ? text.padEnd(widths[column] ?? 0) : text.padStart(widths[column] ?? 0))).join('  ');
  return [line(headers), widths.map((width) => '-'.repeat(width)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export function markdownTable(headers: string[], rows: Array<Array<string | number>>): string {
  const escape = (text: string): string => text.replace(/\|/g, '\\|');
  return [
    `| ${headers.map(escape).join(' | ')} |`,
    `|${headers.map((_, column) => (column === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((row) => `| ${row.map((value) => escape(cell(value))).join(' | ')} |`),
  ].join('\n');
}

export function goalMark(met: boolean | null): string {
  return met === null ? 'n/a' : met ? 'met' : 'NOT met';
}

export function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
