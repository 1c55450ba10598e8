// `npm run bench -- instructions`: instructions executed per request on the hot path, counted by valgrind's callgrind.
// Wall-clock req/s on a shared VM swings from round to round; the instructions one request costs barely move.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startOrqEmulator } from '../src/testing/index.js';
import {
  log, median, round, startAppProcess, userIds, warmUsers, whoamiEach, type AppHandle, type AppSpec, type ScenarioResult,
} from './lib.js';

const run = promisify(execFile);

const userCount = 1_000;
/** Requests before counting (JIT tier-up), and requests counted; both cycle through the same 1 000 cached users. */
const warmupRequests = 6_000;
const measuredRequests = 2_000;
/** Fresh app processes per variant. */
const rounds = 3;

interface Variant {
  key: 'a' | 'b' | 'c' | 'd';
  name: string;
  spec: (emulator: { url: string; apiKey: string }) => AppSpec;
}

const variants: Variant[] = [
  { key: 'a', name: '(a) bare Express', spec: () => ({ variant: 'bare' }) },
  { key: 'b', name: '(b) + Map lookup (floor)', spec: () => ({ variant: 'map', mapUsers: { prefix: 'hot', count: userCount } }) },
  { key: 'c', name: '(c) + orqIdentity', spec: (emulator) => ({ variant: 'orq', orq: { url: emulator.url, apiKey: emulator.apiKey } }) },
  // Separates the middleware's own cost from what AsyncLocalStorage costs the whole process on Node 20.
  {
    key: 'd',
    name: '(d) + orqIdentity, context: false',
    spec: (emulator) => ({ variant: 'orq', orq: { url: emulator.url, apiKey: emulator.apiKey, options: { context: false } } }),
  },
];

interface Sample {
  round: number;
  instructions: number;
  perRequest: number;
  /** Wall time of the whole round (start under valgrind, warm-up, count, exit), in s. */
  roundSec: number;
}

/**
 * valgrind flags: callgrind starts with instrumentation off (start-up and warm-up run much faster than instrumented),
 * and it is switched on only around the counted requests. `--smc-check=all-non-file` is what lets V8's JIT code run:
 * V8 writes and patches code in anonymous memory, which valgrind must re-translate when it changes.
 */
function callgrind(outDir: string): string[] {
  return [
    'valgrind', '--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file',
    `--callgrind-out-file=${path.join(outDir, 'callgrind.out.%p')}`, `--log-file=${path.join(outDir, 'valgrind.%p.log')}`,
  ];
}

async function control(pid: number, ...args: string[]): Promise<void> {
  await run('callgrind_control', [...args, String(pid)], { timeout: 60_000 });
}

/** Total Ir (instructions executed, all threads) of a callgrind dump. */
async function dumpInstructions(file: string): Promise<number> {
  const text = await readFile(file, 'utf8');
  const line = /^summary:\s*(\d+)/m.exec(text) ?? /^totals:\s*(\d+)/m.exec(text);
  if (line === null) throw new Error(`no summary line in ${file}`);
  return Number(line[1]);
}

function cycle(users: readonly string[], count: number): string[] {
  return Array.from({ length: count }, (_, index) => users[index % users.length] as string);
}

async function measure(
  variant: Variant, r: number, outDir: string, emulator: { url: string; apiKey: string; count(): number }, users: string[],
): Promise<Omit<Sample, 'roundSec'>> {
  const started = performance.now();
  let app: AppHandle | undefined;
  // One keep-alive connection, sequential requests: every request costs the same turn of the app's event loop.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    app = await startAppProcess(variant.name, variant.spec(emulator), { wrapper: callgrind(outDir), exitTimeoutMs: 60_000 });
    const pid = app.child.pid as number;
    if (variant.key === 'c' || variant.key === 'd') await warmUsers(app.url, users);
    await whoamiEach(app.url, cycle(users, warmupRequests), 1, agent);
    const calls = emulator.count();
    await control(pid, '--instr=on');
    await control(pid, '--zero');
    const answers = await whoamiEach(app.url, cycle(users, measuredRequests), 1, agent);
    await control(pid, '--dump');
    await control(pid, '--instr=off');
    const bad = answers.filter((answer) => answer.status !== 200 || (variant.key !== 'a') !== (answer.identity !== null));
    if (bad.length > 0) throw new Error(`${variant.name}: ${bad.length} unexpected answers, e.g. ${JSON.stringify(bad[0])}`);
    if (emulator.count() !== calls) throw new Error(`${variant.name}: ${emulator.count() - calls} orq calls while counting`);
    const instructions = await dumpInstructions(path.join(outDir, `callgrind.out.${pid}.1`));
    return { round: r, instructions, perRequest: instructions / measuredRequests };
  } finally {
    agent.destroy();
    await app?.close();
    log(`  instructions ${variant.name} round ${r + 1}/${rounds}: ${Math.round((performance.now() - started) / 1000)} s`);
  }
}

export async function runInstructions(): Promise<ScenarioResult> {
  const outDir = await mkdtemp(path.join(os.tmpdir(), 'bench-callgrind-'));
  const emulator = await startOrqEmulator();
  const users = userIds('hot', userCount);
  const samples = new Map<Variant['key'], Sample[]>(variants.map((variant) => [variant.key, []]));
  try {
    await run('valgrind', ['--version'], { timeout: 10_000 }).catch(() => {
      throw new Error('the instructions scenario needs valgrind (apt-get install valgrind)');
    });
    for (let r = 0; r < rounds; r++) {
      for (const variant of variants) {
        const roundStarted = performance.now();
        const sample = await measure(variant, r, outDir, emulator, users);
        samples.get(variant.key)?.push({ ...sample, roundSec: round((performance.now() - roundStarted) / 1000, 1) });
      }
    }
  } finally {
    await emulator.close();
    await rm(outDir, { recursive: true, force: true });
  }

  const per = (key: Variant['key']): number[] => (samples.get(key) ?? []).map((sample) => sample.perRequest);
  const spread = (values: number[]): number => (Math.max(...values) - Math.min(...values)) / median(values);
  const rows = variants.map((variant) => {
    const values = per(variant.key);
    const count = (value: number): string => Math.round(value).toLocaleString('en-US');
    return [variant.name, Math.round(median(values)), `${count(Math.min(...values))}–${count(Math.max(...values))}`,
      `${round(spread(values) * 100, 2)} %`, values.map(count).join(', ')];
  });
  const [a, b, c, d] = [median(per('a')), median(per('b')), median(per('c')), median(per('d'))];
  // Ratios per round (the processes of one round share nothing, but pairing keeps the spread visible).
  const bOverC = per('c').map((value, index) => (per('b')[index] ?? Number.NaN) / value);
  const cMinusB = per('c').map((value, index) => value - (per('b')[index] ?? Number.NaN));
  const ratioRows: Array<Array<string | number>> = [
    ['instructions (b)/(c) ≈ req/s (c)/(b)', round(b / c, 4), round(Math.min(...bOverC), 4), round(Math.max(...bOverC), 4)],
    ['(c) − (b), instructions per request', Math.round(c - b), Math.round(Math.min(...cMinusB)), Math.round(Math.max(...cMinusB))],
    ['(b) − (a), instructions per request', Math.round(b - a), '', ''],
    ['instructions (a)/(c) ≈ req/s (c)/(a)', round(a / c, 4), '', ''],
    ['instructions (b)/(d), context off', round(b / d, 4), '', ''],
    ['(c) − (d): what context: true costs, instructions per request', Math.round(c - d), '', ''],
  ];
  return {
    name: 'instructions',
    sections: [
      {
        title: 'Hot path: instructions per request (callgrind)',
        notes: [
          `Each variant in a fresh app process under valgrind --tool=callgrind, ${rounds} rounds; ${userCount.toLocaleString('en-US')} cached users cycling, ` +
            `${warmupRequests.toLocaleString('en-US')} warm-up requests uncounted, then ${measuredRequests.toLocaleString('en-US')} counted, ` +
            'sequential on one keep-alive connection from the bench process.',
          'Ir = instructions executed by the app process (all threads: JIT code, V8, GC, libuv, kernel calls excluded) while counting, ÷ requests. ' +
            'Median over rounds; spread = (max − min) / median.',
        ],
        headers: ['variant', 'Ir / request', 'range', 'spread', 'rounds'],
        rows,
      },
      {
        title: 'Hot path: (c) orqIdentity in instructions',
        notes: ['Medians; min and max are over rounds (round r of (b) against round r of (c)).'],
        headers: ['measure', 'median', 'min', 'max'],
        rows: ratioRows,
      },
    ],
    goals: [
      {
        goal: 'instructions (b)/(c) >= 0.97 (the throughput goal, counted in instructions)',
        met: b / c >= 0.97,
        detail: `${round(b / c, 4)}; (c) − (b) = ${Math.round(c - b)} instructions per request`,
      },
    ],
    data: {
      users: userCount,
      warmupRequests,
      measuredRequests,
      rounds,
      samples: Object.fromEntries(variants.map((variant) => [variant.name, samples.get(variant.key)])),
      medians: { a, b, c },
      bOverC: { median: b / c, perRound: bOverC.map((value) => round(value, 5)) },
      cMinusB: { median: c - b, perRound: cMinusB.map((value) => Math.round(value)) },
    },
  };
}
