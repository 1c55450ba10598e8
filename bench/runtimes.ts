// Scenario 5, what the package costs on the Node versions apps run (24 the headline, 20 for comparison): the hot path in
// an app that does not load @orq-ai/node and in one that does, heap at idle, GC under load, import cost, first request.
import { execFile, execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { startOrqEmulator, type OrqEmulator } from '../src/testing/index.js';
import {
  alternate, log, median, nodeBinary, nodeVersion, pairedRatio, ratioRow, repoRoot, round, settings, startAppProcess, summarise,
  userIds, userRequests, warmUsers, type AppHandle, type AppStats, type IdleMemory, type RoundSample, type ScenarioResult, type Section,
} from './lib.js';

const run = promisify(execFile);
const userCount = 1_000;
const majors = [24, 20] as const;
const goalRatio = 0.95;
// Short rounds by default: four apps on two Node versions; BENCH_ROUNDS / BENCH_DURATION still override.
const rounds = process.env.BENCH_ROUNDS ? settings.rounds : 4;
const durationSec = process.env.BENCH_DURATION ? settings.durationSec : 3;
const importRuns = 5;
const firstRequestRuns = 3;

interface AppResult {
  name: string;
  idle: IdleMemory;
  samples: RoundSample[];
  /** Per measured round: GC pause time in ms per second of load, the longest pause, V8's heap size after the round. */
  gcMsPerSec: number[];
  gcMaxMs: number[];
  heapTotalMiB: number[];
}

interface RuntimeResult {
  node: string;
  apps: AppResult[];
  ratios: Record<string, ReturnType<typeof pairedRatio>>;
  callsDuringLoad: number;
  imports: Array<{ what: string; importMs: number; heapMiB: number; sdkModules: number }>;
  firstRequest: Array<{ variant: string; listeningMs: number; firstIdentityMs: number; runs: number[] }>;
}

export async function runRuntimes(): Promise<ScenarioResult> {
  log('runtimes: building dist/ for the import measurements');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
  const results: RuntimeResult[] = [];
  for (const major of majors) results.push(await measureRuntime(major));

  const sections: Section[] = results.flatMap((result) => runtimeSections(result));
  sections.push(importSection(results), firstRequestSection(results));
  const headline = results[0] as RuntimeResult;
  const noSdk = headline.ratios.noSdk as ReturnType<typeof pairedRatio>;
  const withSdk = headline.ratios.withSdk as ReturnType<typeof pairedRatio>;
  const packageImport = headline.imports.find((entry) => entry.what.startsWith('express-orq-identity (ESM)'));
  return {
    name: 'runtimes',
    sections,
    goals: [
      {
        goal: `${headline.node}, app without @orq-ai/node: req/s (c)/(b) >= ${goalRatio}`,
        met: noSdk.median >= goalRatio,
        detail: `median ${round(noSdk.median, 3)}, rounds ${noSdk.perRound.join(', ')}`,
      },
      {
        goal: `${headline.node}, both apps carrying the SDK: req/s (c+sdk)/(b+sdk) within noise of the floor (>= ${goalRatio})`,
        met: withSdk.median >= goalRatio,
        detail: `median ${round(withSdk.median, 3)}, rounds ${withSdk.perRound.join(', ')}`,
      },
      {
        goal: `${headline.node}: importing the package without a client < 100 ms and < 5 MiB live heap, no SDK module`,
        met: packageImport !== undefined && packageImport.importMs < 100 && packageImport.heapMiB < 5 && packageImport.sdkModules === 0,
        detail: packageImport === undefined ? 'not measured' : `${round(packageImport.importMs, 1)} ms, ${round(packageImport.heapMiB, 2)} MiB, ${packageImport.sdkModules} SDK modules`,
      },
      { goal: 'no orq call on the hot path', met: results.every((result) => result.callsDuringLoad === 0), detail: results.map((result) => `${result.node}: ${result.callsDuringLoad}`).join(', ') },
    ],
    data: { rounds, durationSec, results },
  };
}

async function measureRuntime(major: number): Promise<RuntimeResult> {
  const nodePath = nodeBinary(major);
  const node = nodeVersion(nodePath);
  log(`runtimes: ${node} (${nodePath})`);
  const emulator = await startOrqEmulator();
  const orq = { url: emulator.url, apiKey: emulator.apiKey };
  const users = userIds('rt', userCount);
  const mapUsers = { prefix: 'rt', count: userCount };
  const options = { nodePath, execArgv: ['--expose-gc'] };
  const apps: AppHandle[] = [];
  try {
    const [floor, middleware, floorSdk, middlewareSdk] = await Promise.all([
      startAppProcess('(b) Map floor', { variant: 'map', mapUsers }, options),
      startAppProcess('(c) orqIdentity()', { variant: 'orq', orq }, options),
      startAppProcess('(b+sdk) Map floor, SDK loaded', { variant: 'map', mapUsers, orq, loadSdk: true }, options),
      startAppProcess('(c+sdk) orqIdentity({ client })', { variant: 'orq', orq, loadSdk: true }, options),
    ]);
    apps.push(floor, middleware, floorSdk, middlewareSdk);
    log(`runtimes: warming ${userCount} users through orq in (c) and (c+sdk)`);
    await Promise.all([warmUsers(middleware.url, users), warmUsers(middlewareSdk.url, users)]);
    const callsAfterWarm = emulator.count();
    const idle = new Map<AppHandle, IdleMemory>();
    for (const app of apps) idle.set(app, await app.idle());

    const gc = new Map<AppHandle, { perSec: number[]; max: number[]; heapTotal: number[] }>(apps.map((app) => [app, { perSec: [], max: [], heapTotal: [] }]));
    const samples = await alternate(apps, userRequests(users), {
      rounds,
      durationSec,
      check: async (app) => {
        // alternate() has just read the round's stats; read them again for the GC fields (mark is untouched).
        const stats: AppStats = await app.stats();
        const entry = gc.get(app);
        entry?.perSec.push(stats.gcMs / (stats.wallMs / 1000));
        entry?.max.push(stats.gcMaxMs);
        entry?.heapTotal.push(stats.heapTotalMiB);
      },
    });
    const callsDuringLoad = emulator.count() - callsAfterWarm;
    const sampled = (app: AppHandle): RoundSample[] => samples.get(app) ?? [];
    return {
      node,
      apps: apps.map((app) => ({
        name: app.name,
        idle: idle.get(app) as IdleMemory,
        samples: sampled(app),
        gcMsPerSec: gc.get(app)?.perSec ?? [],
        gcMaxMs: gc.get(app)?.max ?? [],
        heapTotalMiB: gc.get(app)?.heapTotal ?? [],
      })),
      ratios: {
        noSdk: pairedRatio(sampled(middleware), sampled(floor), 'reqPerSec'),
        withSdk: pairedRatio(sampled(middlewareSdk), sampled(floorSdk), 'reqPerSec'),
        sdkOnFloor: pairedRatio(sampled(floorSdk), sampled(floor), 'reqPerSec'),
        p99NoSdk: pairedRatio(sampled(middleware), sampled(floor), 'p99'),
        p99WithSdk: pairedRatio(sampled(middlewareSdk), sampled(floorSdk), 'p99'),
      },
      callsDuringLoad,
      imports: await measureImports(nodePath),
      firstRequest: await measureFirstRequest(nodePath),
    };
  } finally {
    await Promise.all(apps.map((app) => app.close()));
    await emulator.close();
  }
}

/** Each import in a fresh process (test/fixtures/import-probe.mjs), on the built package; median of a few runs. */
async function measureImports(nodePath: string): Promise<RuntimeResult['imports']> {
  const probe = path.join(repoRoot, 'test', 'fixtures', 'import-probe.mjs');
  const cases = [
    ['express-orq-identity (ESM), orqIdentity() made', './dist/index.js', 'import', '--create'],
    ['express-orq-identity (CJS), orqIdentity() made', './dist/index.cjs', 'require', '--create'],
    ['@orq-ai/node (what `client` implies)', '@orq-ai/node', 'require'],
  ] as const;
  const results: RuntimeResult['imports'] = [];
  for (const [what, entry, how, ...flags] of cases) {
    const runs: Array<{ importMs: number; heapBytes: number; sdkModuleCount: number }> = [];
    for (let index = 0; index < importRuns; index++) {
      const { stdout } = await run(nodePath, ['--expose-gc', probe, entry, how, ...flags], { cwd: repoRoot, timeout: 60_000 });
      runs.push(JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as (typeof runs)[number]);
    }
    results.push({
      what,
      importMs: median(runs.map((entry) => entry.importMs)),
      heapMiB: median(runs.map((entry) => entry.heapBytes)) / 2 ** 20,
      sdkModules: Math.max(...runs.map((entry) => entry.sdkModuleCount)),
    });
    log(`  import ${what}: ${round(results.at(-1)?.importMs ?? 0, 1)} ms`);
  }
  return results;
}

/**
 * The example app (examples/bearer-token/server.ts, run with tsx as its README says) from spawn to its first answered
 * request carrying an identity (a new user: one retrieve and one create on a fresh emulator). "before" preloads
 * @orq-ai/node, which is what importing the package did until the fetch transport; "after" is the package as it is.
 */
async function measureFirstRequest(nodePath: string): Promise<RuntimeResult['firstRequest']> {
  const variants = [
    ['before: @orq-ai/node loaded at start', ['--require', '@orq-ai/node']],
    ['after: default fetch transport', []],
  ] as const;
  const runs = new Map<string, Array<{ listeningMs: number; firstIdentityMs: number }>>(variants.map(([name]) => [name, []]));
  // One unrecorded start of each first: tsx's transform cache and the OS file cache.
  for (const [, flags] of variants) await startExample(nodePath, [...flags]);
  for (let index = 0; index < firstRequestRuns; index++) {
    for (const [name, flags] of index % 2 === 0 ? variants : [...variants].reverse()) runs.get(name)?.push(await startExample(nodePath, [...flags]));
  }
  return variants.map(([name]) => {
    const measured = runs.get(name) ?? [];
    return {
      variant: name,
      listeningMs: median(measured.map((entry) => entry.listeningMs)),
      firstIdentityMs: median(measured.map((entry) => entry.firstIdentityMs)),
      runs: measured.map((entry) => round(entry.firstIdentityMs, 0)),
    };
  });
}

async function startExample(nodePath: string, flags: string[]): Promise<{ listeningMs: number; firstIdentityMs: number }> {
  const emulator: OrqEmulator = await startOrqEmulator();
  const started = performance.now();
  const child = spawn(nodePath, [...flags, '--import', 'tsx', path.join('examples', 'bearer-token', 'server.ts')], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ORQ_API_KEY: emulator.apiKey, ORQ_SERVER_URL: emulator.url, PORT: '0', AUTH_SECRET: 'bench-secret-of-at-least-32-characters!!' },
  });
  try {
    let output = '';
    const listening = await new Promise<{ url: string; token: string; at: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the example did not start in 30 s: ${output}`)), 30_000);
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        const url = /Listening on (http:\/\/\S+),/.exec(output)?.[1];
        const token = /Bearer ([\w.-]+)"/.exec(output)?.[1];
        if (url !== undefined && token !== undefined) {
          clearTimeout(timer);
          resolve({ url, token, at: performance.now() });
        }
      });
      child.once('exit', (code) => reject(new Error(`the example exited with ${String(code)}: ${output}`)));
    });
    const response = await fetch(`${listening.url}/me`, { headers: { authorization: `Bearer ${listening.token}` } });
    const body = (await response.json()) as { identity: { id?: string } | null };
    if (body.identity?.id === undefined) throw new Error(`the example's first request had no identity: ${JSON.stringify(body)}`);
    return { listeningMs: listening.at - started, firstIdentityMs: performance.now() - started };
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    await emulator.close();
  }
}

function runtimeSections(result: RuntimeResult): Section[] {
  const rows = result.apps.map((app) => {
    const summary = summarise(app.samples);
    return [
      app.name, Math.round(summary.reqPerSec), `${Math.round(summary.reqPerSecMin)}–${Math.round(summary.reqPerSecMax)}`, summary.p50, summary.p99,
      round(app.idle.heapUsedMiB, 1), round(app.idle.rssMiB, 0), round(Math.max(...app.heapTotalMiB), 0),
      round(median(app.gcMsPerSec), 1), round(Math.max(...app.gcMaxMs), 1), Math.round(summary.appCpuPct),
    ];
  });
  return [
    {
      title: `Runtimes: hot path on ${result.node}, apps with and without @orq-ai/node`,
      notes: [
        `${rounds} rounds × ${durationSec} s per app, order rotated each round, ${settings.connections} connections, ${userCount} cached users cycling; ` +
          'each app its own process on this Node, autocannon and the emulator in the bench process.',
        '(b+sdk) and (c+sdk) load @orq-ai/node at start and make a client, as an app using it for LLM calls does; (c+sdk) passes it as `client`.',
        'Idle heap: live heap after warm-up and a full GC. Heap total: the most V8 had grown the heap to after a round. GC: pause time per second of load (median over rounds) and the longest pause.',
      ],
      headers: ['variant', 'req/s', 'req/s range', 'p50', 'p99', 'idle heap MiB', 'idle RSS MiB', 'heap total MiB', 'GC ms/s', 'max GC pause ms', 'app CPU %'],
      rows,
    },
    {
      title: `Runtimes: ratios on ${result.node} (paired per round)`,
      notes: [`orq calls during the measured load: ${result.callsDuringLoad}.`],
      headers: ['ratio', 'median', 'min', 'max'],
      rows: [
        ratioRow('req/s (c)/(b), no SDK in either app', result.ratios.noSdk as ReturnType<typeof pairedRatio>),
        ratioRow('req/s (c+sdk)/(b+sdk), SDK in both', result.ratios.withSdk as ReturnType<typeof pairedRatio>),
        ratioRow('req/s (b+sdk)/(b): the SDK merely loaded', result.ratios.sdkOnFloor as ReturnType<typeof pairedRatio>),
        ratioRow('p99 (c)/(b)', result.ratios.p99NoSdk as ReturnType<typeof pairedRatio>),
        ratioRow('p99 (c+sdk)/(b+sdk)', result.ratios.p99WithSdk as ReturnType<typeof pairedRatio>),
      ],
    },
  ];
}

function importSection(results: RuntimeResult[]): Section {
  return {
    title: 'Runtimes: importing the package vs @orq-ai/node',
    notes: [`Fresh process each (test/fixtures/import-probe.mjs on dist/), median of ${importRuns}; live heap added after a full GC.`],
    headers: ['node', 'what', 'import ms', 'live heap MiB', '@orq-ai/node modules loaded'],
    rows: results.flatMap((result) => result.imports.map((entry) => [result.node, entry.what, round(entry.importMs, 1), round(entry.heapMiB, 2), entry.sdkModules])),
  };
}

function firstRequestSection(results: RuntimeResult[]): Section {
  return {
    title: 'Runtimes: time to first served request of the example app (before → after)',
    notes: [
      `examples/bearer-token/server.ts under tsx, from spawn to the answer of its first request (a new user: retrieve 404 + create), median of ${firstRequestRuns}; ` +
        '"before" preloads @orq-ai/node, which importing the package did until the fetch transport.',
    ],
    headers: ['node', 'variant', 'listening ms', 'first identity ms', 'runs ms'],
    rows: results.flatMap((result) => result.firstRequest.map((entry) => [result.node, entry.variant, Math.round(entry.listeningMs), Math.round(entry.firstIdentityMs), entry.runs.join(', ')])),
  };
}
