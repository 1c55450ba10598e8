// The memory scenario's measuring process (run by bench/memory.ts with --expose-gc; the emulator lives in the parent,
// so its growing store is not in this heap). Drives the middleware in-process with fake req objects, no HTTP.
import type { NextFunction, Request, Response } from 'express';
import { LRUCache } from 'lru-cache';
import { orqIdentity, type OrqIdentity, type OrqIdentityMiddleware } from '../src/index.js';
import { identityFromWire } from '../src/orq-client.js';
import { userIds } from './lib.js';

export interface MemorySpec {
  url: string;
  apiKey: string;
  realUsers: number;
  realCacheMax: number;
  totalUsers: number;
  cacheMax: number;
  realSampleEvery: number;
  cacheSampleEvery: number;
}

export interface HeapSample {
  phase: 'start' | 'real' | 'cache';
  users: number;
  heapUsedMiB: number;
  cacheSize: number;
}

export interface MemoryReport {
  gcExposed: boolean;
  samples: HeapSample[];
  real: { ms: number; withIdentity: number; internals: Record<string, number>; errors: Record<string, number> };
  cache: { ms: number; syncHits: number };
}

const spec = JSON.parse(process.env.BENCH_MEMORY ?? '{}') as MemorySpec;
const gc = (globalThis as { gc?: () => void }).gc;
const errors: Record<string, number> = {};
const samples: HeapSample[] = [];

function heapUsedMiB(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

function sample(phase: HeapSample['phase'], users: number, cacheSize: number): void {
  samples.push({ phase, users, heapUsedMiB: heapUsedMiB(), cacheSize });
}

function cacheOf(middleware: OrqIdentityMiddleware): LRUCache<string, OrqIdentity> {
  return (middleware.resolver as unknown as { cache: LRUCache<string, OrqIdentity> }).cache;
}

function fakeReq(id: string): Request {
  return { user: { id } } as unknown as Request;
}

const res = {} as Response;

/** Phase 1, the real path: every user looked up and created through the SDK and the emulator, 8 at a time. */
async function realPath(): Promise<MemoryReport['real']> {
  const middleware = orqIdentity({
    apiKey: spec.apiKey,
    serverURL: spec.url,
    cache: { max: spec.realCacheMax },
    // 2 000 new users in seconds would wait minutes for the default call budget; memory is what is measured here.
    budget: false,
    onError: (error) => {
      errors[error.code] = (errors[error.code] ?? 0) + 1;
    },
  });
  const users = userIds('mem-real', spec.realUsers);
  const started = performance.now();
  let next = 0;
  let withIdentity = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < users.length) {
        const req = fakeReq(users[next++] as string);
        await new Promise<void>((resolve) => middleware(req, res, (() => resolve()) as NextFunction));
        if (req.orqIdentity !== undefined) withIdentity++;
        if (++done % spec.realSampleEvery === 0 || done === users.length) {
          const size = cacheOf(middleware).size;
          sample('real', done, size);
        }
      }
    }),
  );
  const ms = performance.now() - started;
  await middleware.close({ timeoutMs: 5_000 });
  // Private fields, read only here: after every lookup settled, none of them may keep anything.
  const resolver = middleware.resolver as unknown as Record<string, { size: number }>;
  const internals = Object.fromEntries(['lookups', 'pending', 'refreshing'].map((name) => [name, resolver[name]?.size ?? -1]));
  return { ms, withIdentity, internals, errors: { ...errors } };
}

/** A wire identity as the emulator's documented shape sends it, parsed fresh, so every string is its own. */
function wireIdentity(externalId: string, index: number): string {
  const time = new Date(Date.UTC(2025, 0, 1) + index * 1_000).toISOString();
  return JSON.stringify({
    _id: `contact_01JMEM${String(index).padStart(20, '0')}`,
    external_id: externalId,
    workspace_id: '550e8400-e29b-41d4-a716-446655440000',
    display_name: null, email: null, avatar_url: null, tags: [], metadata: {},
    created: time, updated: time,
  });
}

/** Phase 2: totalUsers distinct users through a cache of cacheMax, each set like a finished lookup, then a hit. */
function cachePath(): MemoryReport['cache'] {
  sample('cache', 0, 0);
  const cache = new LRUCache<string, OrqIdentity>({ max: spec.cacheMax, ttl: 600_000 });
  const middleware = orqIdentity({ apiKey: spec.apiKey, serverURL: spec.url, cache, onError: () => undefined });
  const started = performance.now();
  let syncHits = 0;
  let calledNext = false;
  const next = (() => {
    calledNext = true;
  }) as NextFunction;
  for (let index = 0; index < spec.totalUsers; index++) {
    const externalId = `mem-${String(index).padStart(7, '0')}`;
    const identity = identityFromWire(JSON.parse(wireIdentity(externalId, index)));
    if (identity === undefined) throw new Error('identityFromWire refused the wire identity');
    cache.set(externalId, identity);
    const req = fakeReq(externalId);
    calledNext = false;
    middleware(req, res, next);
    if (calledNext && req.orqIdentity === identity) syncHits++;
    if ((index + 1) % spec.cacheSampleEvery === 0) sample('cache', index + 1, cache.size);
  }
  return { ms: performance.now() - started, syncHits };
}

sample('start', 0, 0);
const real = await realPath();
const cache = cachePath();
const report: MemoryReport = { gcExposed: gc !== undefined, samples, real, cache };
process.send?.(report, () => process.exit(0));
