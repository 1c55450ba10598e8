// One bench app in its own process: Express 5, the auth stand-in, then nothing / a Map lookup / orqIdentity, then GET /.
// Started by startAppProcess (bench/lib.ts), which sends the AppSpec in BENCH_APP and talks to it over IPC.
import express, { type NextFunction, type Request, type Response } from 'express';
import type { AddressInfo } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import { orqIdentity, type OrqClient, type OrqIdentity, type OrqIdentityMiddleware, type OrqIdentityOptions } from '../src/index.js';
import { fakeIdentity, userIds, type AppSpec, type AppStats, type IdleMemory } from './lib.js';

const spec = JSON.parse(process.env.BENCH_APP ?? '{}') as AppSpec;
const errors: Record<string, number> = {};

// An app that uses @orq-ai/node for its LLM calls loads it at start: what that costs every variant is the question.
let sdkClient: OrqClient | undefined;
if (spec.loadSdk === true) {
  const { Orq } = await import('@orq-ai/node');
  sdkClient = new Orq({ apiKey: spec.orq?.apiKey ?? 'unused', serverURL: spec.orq?.url ?? 'http://127.0.0.1:9' });
}

if (spec.outboundFetch !== undefined) {
  const { url, apiKey, prefix, users } = spec.outboundFetch;
  // What orqIdentity's cold path sends for a new user: a retrieve answered 404, then a create; eight users at a time.
  const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
  const ids = userIds(prefix, users);
  for (let start = 0; start < ids.length; start += 8) {
    await Promise.all(
      ids.slice(start, start + 8).map(async (id) => {
        await (await fetch(`${url}/v2/identities/${encodeURIComponent(id)}`, { headers })).arrayBuffer();
        const body = JSON.stringify({ external_id: id });
        await (await fetch(`${url}/v2/identities`, { method: 'POST', headers, body })).arrayBuffer();
      }),
    );
  }
}

let gcMs = 0;
let gcMaxMs = 0;
let gcCount = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcMs += entry.duration;
    gcMaxMs = Math.max(gcMaxMs, entry.duration);
    gcCount++;
  }
}).observe({ entryTypes: ['gc'] });
let middleware: OrqIdentityMiddleware | undefined;
let identities: Map<string, OrqIdentity> | undefined;

const app = express();
// The auth stand-in every variant has: what passport would leave on req.
app.use(function authStandIn(req: Request, _res: Response, next: NextFunction) {
  const id = req.headers['x-user'];
  if (typeof id === 'string') (req as { user?: unknown }).user = { id };
  next();
});

if (spec.variant === 'map') {
  const { prefix, count } = spec.mapUsers ?? { prefix: 'user', count: 0 };
  const map = new Map<string, OrqIdentity>();
  userIds(prefix, count).forEach((externalId, index) => map.set(externalId, fakeIdentity(externalId, index)));
  identities = map;
  // The floor: the least any identity middleware can do, a synchronous lookup and an assignment.
  app.use(function mapMiddleware(req: Request, _res: Response, next: NextFunction) {
    const user = (req as { user?: { id?: unknown } }).user;
    if (user !== undefined && typeof user.id === 'string') {
      const identity = map.get(user.id);
      if (identity !== undefined) req.orqIdentity = identity;
    }
    next();
  });
} else if (spec.variant === 'orq') {
  const orq = spec.orq;
  if (orq === undefined) throw new Error('variant orq needs spec.orq');
  // With redisUrl: the shared store on an ioredis client, with the options docs/many-instances.md recommends.
  // Imported only then, so the other variants' processes load exactly what they did before.
  const redis = orq.redisUrl === undefined ? undefined
    : new (await import('ioredis')).Redis(orq.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  middleware = orqIdentity({
    ...(sdkClient === undefined ? { apiKey: orq.apiKey, serverURL: orq.url } : { client: sdkClient }),
    ...(redis === undefined ? {} : { shared: { redis } }),
    // Scenarios warm 1 000 users in seconds, which the default budget (60 calls a minute) would spread over half an
    // hour; the budget is measured in the fleet scenario, which passes its own.
    budget: false,
    ...(orq.options as Partial<OrqIdentityOptions>),
    // Counted, not printed: the outage scenario provokes reports on purpose and stdout holds the tables.
    onError: (error) => {
      errors[error.code] = (errors[error.code] ?? 0) + 1;
    },
  });
  app.use(middleware);
}

app.get('/', (req: Request, res: Response) => {
  res.json({ identity: req.orqIdentity?.id ?? null });
});

const server = app.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'ready', port: (server.address() as AddressInfo).port });
});
// Bench clients keep connections open between bursts; Node's 5 s default would close them mid-run.
server.keepAliveTimeout = 120_000;

let markCpu = process.cpuUsage();
let markWall = performance.now();

process.on('message', (message: { id: number; cmd: string }) => {
  const reply = (value?: unknown): void => {
    process.send?.({ id: message.id, value });
  };
  switch (message.cmd) {
    case 'mark':
      markCpu = process.cpuUsage();
      markWall = performance.now();
      gcMs = 0;
      gcMaxMs = 0;
      gcCount = 0;
      return reply();
    case 'stats': {
      const cpu = process.cpuUsage(markCpu);
      const cache = (middleware?.resolver as unknown as { cache?: { size: number } } | undefined)?.cache;
      const stats: AppStats = {
        circuit: middleware?.resolver.circuit ?? null,
        errors: { ...errors },
        cpuMs: (cpu.user + cpu.system) / 1000,
        wallMs: performance.now() - markWall,
        heapUsedMiB: process.memoryUsage().heapUsed / 2 ** 20,
        heapTotalMiB: process.memoryUsage().heapTotal / 2 ** 20,
        gcMs,
        gcMaxMs,
        gcCount,
        cacheSize: cache?.size ?? identities?.size ?? null,
      };
      return reply(stats);
    }
    case 'idle': {
      (globalThis as { gc?: () => void }).gc?.();
      const memory = process.memoryUsage();
      const idle: IdleMemory = { heapUsedMiB: memory.heapUsed / 2 ** 20, heapTotalMiB: memory.heapTotal / 2 ** 20, rssMiB: memory.rss / 2 ** 20 };
      return reply(idle);
    }
    case 'exit':
      server.closeAllConnections();
      server.close();
      // process.exit (not a signal) so --cpu-prof writes its profile.
      void (middleware?.close({ timeoutMs: 200 }) ?? Promise.resolve()).finally(() => process.exit(0));
      return;
  }
});
process.on('disconnect', () => process.exit(0));
