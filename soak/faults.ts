// The fault schedule and how each fault is made: orq (through the emulator's fault queue) failing in five ways,
// Redis crashing or stalling, and an app instance crashing and coming back with an empty cache.
import type { Fault, OrqEmulator } from '../src/testing/index.js';
import type { RedisServer } from '../test/redis-process.js';
import type { AppProcess } from './fleet.js';

export const FAULT_KINDS = [
  'orq-5xx',
  'redis-restart',
  'orq-hang',
  'redis-pause',
  'orq-reset',
  'instance-kill',
  'orq-429',
  'orq-invalid-json',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface PlannedFault {
  kind: FaultKind;
  /** ms since the run started. */
  atMs: number;
  /** How long orq keeps failing; for Redis and instance faults, how long the process is down or stopped. */
  durationMs: number;
}

export interface FaultRecord {
  kind: FaultKind;
  startMs: number;
  endMs: number;
  note?: string;
}

export interface Schedule {
  /** No fault before this: the warm-up the memory baseline is taken after. */
  warmUpMs: number;
  /** No fault after this: the quiet end, where the final memory and latency are read. */
  quietFromMs: number;
  faults: PlannedFault[];
}

/**
 * Faults every few minutes (every 3 at most; closer in short runs, so even the 3-minute CI run goes through each kind
 * once), cycling through the kinds, between a warm-up and a quiet end of a sixth of the run each (30 s to 5 min).
 */
export function planFaults(runMs: number, kinds: readonly FaultKind[] = FAULT_KINDS): Schedule {
  const edgeMs = Math.min(300_000, Math.max(30_000, runMs / 6));
  const warmUpMs = Math.min(edgeMs, runMs / 3);
  const quietFromMs = Math.max(warmUpMs, runMs - edgeMs);
  const faults: PlannedFault[] = [];
  const windowMs = quietFromMs - warmUpMs;
  if (kinds.length === 0 || windowMs <= 0) return { warmUpMs, quietFromMs, faults };
  const intervalMs = Math.min(180_000, windowMs / kinds.length);
  // orq failing for 20 s, or half the interval in short runs; a Redis stall of 2 s is 8 × the default commandTimeoutMs.
  const orqMs = Math.min(20_000, intervalMs / 2);
  for (let index = 0, atMs = warmUpMs; atMs + intervalMs <= quietFromMs + 1; index += 1, atMs += intervalMs) {
    const kind = kinds[index % kinds.length] as FaultKind;
    faults.push({ kind, atMs: Math.round(atMs), durationMs: Math.round(kind.startsWith('orq-') ? orqMs : 2_000) });
  }
  return { warmUpMs, quietFromMs, faults };
}

/** orq's identity calls (not the LLM gateway's: those are the app's own calls) failing as `kind` says. */
export function orqFault(kind: FaultKind): Fault[] {
  const effect = ((): Fault | undefined => {
    switch (kind) {
      case 'orq-5xx':
        return { kind: 'status', status: 503 };
      case 'orq-hang':
        return { kind: 'hang' };
      case 'orq-reset':
        return { kind: 'reset' };
      case 'orq-429':
        return { kind: 'status', status: 429, headers: { 'retry-after': '10' }, body: { error: 'Too many requests' } };
      case 'orq-invalid-json':
        return { kind: 'raw', status: 200, body: '{"_id": "contact_', headers: { 'content-type': 'application/json' } };
      default:
        return undefined;
    }
  })();
  if (effect === undefined) return [];
  return (['retrieve', 'create', 'update'] as const).map((operation) => ({ ...effect, operation }));
}

export interface FaultTargets {
  emulator: OrqEmulator;
  redis: RedisServer;
  apps: readonly AppProcess[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Makes one fault happen and resolves when it is over (orq answering again, Redis or the instance back). */
export async function applyFault(planned: PlannedFault, targets: FaultTargets, now: () => number): Promise<FaultRecord> {
  const startMs = now();
  const { kind, durationMs } = planned;
  let note: string | undefined;
  if (kind.startsWith('orq-')) {
    for (const fault of orqFault(kind)) targets.emulator.inject(fault);
    await sleep(durationMs);
    targets.emulator.clearFaults();
  } else if (kind === 'redis-restart') {
    await targets.redis.kill();
    await sleep(durationMs);
    await targets.redis.restart();
  } else if (kind === 'redis-pause') {
    targets.redis.freeze();
    await sleep(durationMs);
    targets.redis.thaw();
  } else if (kind === 'instance-kill') {
    note = await killAndRestart(targets.apps);
  }
  return { kind, startMs, endMs: now(), ...(note === undefined ? {} : { note }) };
}

/**
 * The last instance (never the first, whose memory is the run's baseline) is taken out of rotation, as a load
 * balancer does once its health check fails, its requests in flight finish, then it is SIGKILLed and started again:
 * cold, with nothing in its cache. A kill with requests in flight would fail them for the crash, not for the package.
 */
async function killAndRestart(apps: readonly AppProcess[]): Promise<string> {
  if (apps.length < 2) return 'skipped: one instance only';
  const app = apps[apps.length - 1] as AppProcess;
  app.up = false;
  for (let waited = 0; app.inFlight > 0 && waited < 10_000; waited += 20) await sleep(20);
  const pid = app.pid;
  await app.kill();
  await app.start();
  return `instance ${apps.length - 1} (pid ${String(pid)} → ${String(app.pid)})`;
}
