// `npm run bench -- profile`: the hot-path apps (b) and (c) under `node --cpu-prof`, and where their CPU goes per request.
// Profiles are written to bench/results/profiles/ (open them in Chrome DevTools → Performance, or speedscope).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { startOrqEmulator } from '../src/testing/index.js';
import {
  benchDir, load, log, repoRoot, round, settings, sleep, startAppProcess, userIds, userRequests, warmUsers, whoamiEach,
  type AppHandle, type AppSpec, type ScenarioResult,
} from './lib.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const profileDir = path.join(benchDir, 'results', 'profiles');

function shortUrl(url: string): string {
  return url.replace(/^file:\/\//, '').replace(`${repoRoot}/`, '').replace(/^node_modules\//, '');
}

function frameName(frame: CallFrame): string {
  const where = frame.url === '' ? '' : ` ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
  return `${frame.functionName || '(anonymous)'}${where}`;
}

/** Where a frame's self time goes in the per-request breakdown. */
function category(frame: CallFrame): string {
  const url = frame.url;
  if (frame.functionName === '(idle)') return 'idle';
  if (frame.functionName === '(garbage collector)') return 'GC';
  if (frame.functionName === '(program)') return 'V8/native (program)';
  if (url.includes('/src/middleware.ts')) return 'src/middleware.ts';
  if (url.includes('/src/resolver.ts')) return 'src/resolver.ts';
  if (url.includes('/src/user.ts')) return 'src/user.ts (getUser)';
  if (url.includes('lru-cache')) return 'lru-cache';
  if (url === 'node:async_hooks' || url.startsWith('node:internal/async_hooks') || url.startsWith('node:internal/async_local_storage')) return 'async_hooks / AsyncLocalStorage';
  if (url.includes('bench/app-server.ts')) return 'bench app (auth stand-in, Map floor, route)';
  if (url.includes('node_modules/')) return 'express & deps';
  if (url.startsWith('node:')) return 'node core (http, net, streams)';
  return 'other';
}

/** Frames counted as "the middleware's own work": this frame on the stack and no express `next` between it and the leaf. */
function isDownstream(frame: CallFrame): boolean {
  return frame.functionName === 'next' && frame.url.includes('node_modules/router/');
}

interface Analysis {
  requests: number;
  windowMs: number;
  busyMs: number;
  usPerRequest: number;
  categories: Array<{ category: string; usPerRequest: number; share: number }>;
  /** Self time of frames inside the given middleware's own work, per request. */
  own: Record<string, { usPerRequest: number; functions: Array<{ name: string; usPerRequest: number }> }>;
  top: Array<{ name: string; category: string; usPerRequest: number; share: number }>;
}

function analyse(profile: CpuProfile, fromUs: number, toUs: number, requests: number, middlewares: string[]): Analysis {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<number, number>();
  let time = profile.startTime;
  profile.samples.forEach((id, index) => {
    time += profile.timeDeltas[index] ?? 0;
    const weight = profile.timeDeltas[index + 1] ?? 0;
    if (time < fromUs || time > toUs) return;
    self.set(id, (self.get(id) ?? 0) + weight);
  });

  const perRequest = (us: number): number => us / requests;
  let busy = 0;
  let windowUs = 0;
  const categories = new Map<string, number>();
  const functions = new Map<string, { category: string; us: number }>();
  const own = new Map<string, Map<string, number>>(middlewares.map((name) => [name, new Map()]));
  for (const [id, us] of self) {
    const node = byId.get(id) as ProfileNode;
    const frame = node.callFrame;
    windowUs += us;
    const cat = category(frame);
    if (cat !== 'idle') busy += us;
    categories.set(cat, (categories.get(cat) ?? 0) + us);
    const name = frameName(frame);
    const entry = functions.get(name) ?? { category: cat, us: 0 };
    entry.us += us;
    functions.set(name, entry);
    // Walk up: is this frame part of one of the middlewares' own work?
    let cursor: number | undefined = id;
    while (cursor !== undefined) {
      const ancestor = byId.get(cursor)?.callFrame;
      if (ancestor === undefined || isDownstream(ancestor)) break;
      const bucket = own.get(ancestor.functionName);
      if (bucket !== undefined) {
        bucket.set(name, (bucket.get(name) ?? 0) + us);
        break;
      }
      cursor = parent.get(cursor);
    }
  }
  return {
    requests,
    windowMs: windowUs / 1000,
    busyMs: busy / 1000,
    usPerRequest: perRequest(busy),
    categories: [...categories]
      .filter(([cat]) => cat !== 'idle')
      .sort((x, y) => y[1] - x[1])
      .map(([cat, us]) => ({ category: cat, usPerRequest: perRequest(us), share: us / busy })),
    own: Object.fromEntries(
      [...own].map(([middleware, bucket]) => [
        middleware,
        {
          usPerRequest: perRequest([...bucket.values()].reduce((sum, us) => sum + us, 0)),
          functions: [...bucket].sort((x, y) => y[1] - x[1]).slice(0, 12).map(([name, us]) => ({ name, usPerRequest: perRequest(us) })),
        },
      ]),
    ),
    top: [...functions]
      .filter(([, entry]) => entry.category !== 'idle')
      .sort((x, y) => y[1].us - x[1].us)
      .slice(0, 20)
      .map(([name, entry]) => ({ name, category: entry.category, usPerRequest: perRequest(entry.us), share: entry.us / busy })),
  };
}

async function profileApp(
  name: string, spec: AppSpec, users: string[], durationSec: number, prepare?: (app: AppHandle) => Promise<void>,
): Promise<{ analysis: Analysis; file: string; reqPerSec: number }> {
  // One directory per app and V8's default file names: tsx's loader runs on a worker thread that writes its own
  // profile, and a fixed --cpu-prof-name would let it overwrite the main thread's. The main thread has thread id 0.
  const dir = path.join(profileDir, name);
  await rm(dir, { recursive: true, force: true });
  const app = await startAppProcess(name, spec, { execArgv: ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '250'] });
  try {
    await prepare?.(app);
    await load(app.url, { durationSec: 2, requests: userRequests(users) });
    // CLOCK_MONOTONIC is shared by this process and the child: V8 profile timestamps are in its microseconds.
    const from = Number(process.hrtime.bigint() / 1000n);
    const stats = await load(app.url, { durationSec, requests: userRequests(users) });
    const to = Number(process.hrtime.bigint() / 1000n);
    await app.close();
    const main = (await readdir(dir)).find((entry) => /\.\d+\.0\.\d+\.cpuprofile$/.test(entry));
    if (main === undefined) throw new Error(`no main-thread profile in ${dir}`);
    const file = path.join(name, main);
    const profile = JSON.parse(await readFile(path.join(profileDir, file), 'utf8')) as CpuProfile;
    return { analysis: analyse(profile, from, to, stats.requests, ['orqIdentityMiddleware', 'mapMiddleware', 'authStandIn']), file, reqPerSec: stats.reqPerSec };
  } finally {
    await app.close();
  }
}

async function microbench(): Promise<Record<string, number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(benchDir, 'microbench.ts')], {
    cwd: repoRoot,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [message] = (await once(child, 'message')) as [{ report: Record<string, number> }];
  await once(child, 'exit');
  return message.report;
}

export async function runProfile(): Promise<ScenarioResult> {
  await mkdir(profileDir, { recursive: true });
  const emulator = await startOrqEmulator();
  const hanging = await startOrqEmulator();
  hanging.inject({ kind: 'hang' });
  const users = userIds('hot', 1_000);
  const durationSec = Math.max(settings.durationSec * 2, 5);
  try {
    log(`profile: (b) Map floor, (c) orqIdentity, and orqIdentity with its breaker open, under --cpu-prof, ${durationSec} s each`);
    const floor = await profileApp('hot-path-map', { variant: 'map', mapUsers: { prefix: 'hot', count: 1_000 } }, users, durationSec);
    const orq = await profileApp('hot-path-orq', { variant: 'orq', orq: { url: emulator.url, apiKey: emulator.apiKey } }, users, durationSec,
      (app) => warmUsers(app.url, users));
    const outageOptions = { timeoutMs: 100, lookupTimeoutMs: 300, retries: 0, circuitBreaker: { failureThreshold: 5, cooldownMs: 3_600_000 } };
    const outage = await profileApp('outage-orq', { variant: 'orq', orq: { url: hanging.url, apiKey: hanging.apiKey, options: outageOptions } },
      userIds('outage', 1_000), durationSec, async (app) => {
        await whoamiEach(app.url, userIds('trip', 10), 10);
        for (let i = 0; i < 100 && (await app.stats()).circuit !== 'open'; i++) await sleep(20);
      });
    log('profile: micro-benchmark');
    const micro = await microbench();

    const profiles = [floor, orq, outage];
    const allCategories = [...new Set(profiles.flatMap((entry) => entry.analysis.categories.map((item) => item.category)))];
    const us = (analysis: Analysis, cat: string): number => analysis.categories.find((entry) => entry.category === cat)?.usPerRequest ?? 0;
    const ownOrq = orq.analysis.own.orqIdentityMiddleware;
    const ownMap = floor.analysis.own.mapMiddleware;
    const ownOutage = outage.analysis.own.orqIdentityMiddleware;
    return {
      name: 'profile',
      sections: [
        {
          title: 'Profile: CPU per request by category (µs/request, sampled during load only)',
          notes: [
            `Requests profiled: (b) ${floor.analysis.requests}, (c) ${orq.analysis.requests}, open ${outage.analysis.requests}, ${durationSec} s each; ` +
              `profiles in bench/results/profiles/ (${profiles.map((entry) => entry.file).join(', ')}).`,
            'Self time summed by where the code lives; async_hooks is paid by every async resource once an AsyncLocalStorage is enabled, not only inside the middleware.',
          ],
          headers: ['category', '(b) Map floor', '(c) orqIdentity', 'Δ (c)−(b)', 'breaker open'],
          rows: [
            ...allCategories.map((cat) => [cat, round(us(floor.analysis, cat), 2), round(us(orq.analysis, cat), 2),
              round(us(orq.analysis, cat) - us(floor.analysis, cat), 2), round(us(outage.analysis, cat), 2)]),
            ['total busy', round(floor.analysis.usPerRequest, 2), round(orq.analysis.usPerRequest, 2),
              round(orq.analysis.usPerRequest - floor.analysis.usPerRequest, 2), round(outage.analysis.usPerRequest, 2)],
          ],
        },
        {
          title: 'Profile (c): the middleware\'s own work on a cache hit (frames under it, above express next), µs/request',
          notes: [`orqIdentityMiddleware: ${round(ownOrq?.usPerRequest ?? 0, 3)} µs/request; mapMiddleware: ${round(ownMap?.usPerRequest ?? 0, 3)} µs/request.`],
          headers: ['function (self time)', 'µs/request'],
          rows: (ownOrq?.functions ?? []).map((entry) => [entry.name, round(entry.usPerRequest, 3)]),
        },
        {
          title: 'Profile (breaker open): the middleware\'s own synchronous work per request, µs/request',
          notes: [`orqIdentityMiddleware: ${round(ownOutage?.usPerRequest ?? 0, 3)} µs/request synchronously; the promise reactions it schedules run later (microtasks) and show under top functions.`],
          headers: ['function (self time)', 'µs/request'],
          rows: (ownOutage?.functions ?? []).map((entry) => [entry.name, round(entry.usPerRequest, 3)]),
        },
        {
          title: 'Profile (c): top self-time functions',
          notes: [],
          headers: ['function', 'category', 'µs/request', 'share %'],
          rows: orq.analysis.top.map((entry) => [entry.name, entry.category, round(entry.usPerRequest, 3), round(entry.share * 100, 1)]),
        },
        {
          title: 'Profile (breaker open): top self-time functions',
          notes: [],
          headers: ['function', 'category', 'µs/request', 'share %'],
          rows: outage.analysis.top.map((entry) => [entry.name, entry.category, round(entry.usPerRequest, 3), round(entry.share * 100, 1)]),
        },
        {
          title: 'Micro-benchmark: ns per call, 1 000 cached users, in-process (median of 4 rounds)',
          notes: [],
          headers: ['operation', 'ns/call'],
          rows: Object.entries(micro).map(([name, ns]) => [name, round(ns, 1)]),
        },
      ],
      goals: [],
      data: { durationSec, floor, orq, outage, micro },
    };
  } finally {
    await emulator.close();
    await hanging.close();
  }
}
