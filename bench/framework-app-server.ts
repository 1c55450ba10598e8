// One bench app of another framework in its own process: the framework, its usual auth stand-in, then a Map lookup (the
// floor) or the framework's orqIdentity adapter, then GET / answering { identity }. The IPC protocol of app-server.ts.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { IdentityResolver, OrqIdentity } from '../src/index.js';
import { fakeIdentity, userIds, type AppStats } from './lib.js';

export type Framework = 'fastify' | 'hono' | 'koa';

/** What startAppProcess sends in BENCH_APP for this script. */
export interface FrameworkAppSpec {
  framework: Framework;
  variant: 'map' | 'orq';
  mapUsers?: { prefix: string; count: number };
  orq?: { url: string; apiKey: string };
  /** The adapter's `context` option: false measures the adapter without the request's async context. */
  context?: boolean;
}

const spec = JSON.parse(process.env.BENCH_APP ?? '{}') as FrameworkAppSpec;
let identities: Map<string, OrqIdentity> | undefined;
if (spec.variant === 'map') {
  const { prefix, count } = spec.mapUsers ?? { prefix: 'user', count: 0 };
  identities = new Map(userIds(prefix, count).map((externalId, index) => [externalId, fakeIdentity(externalId, index)]));
}
const map = identities;
const orqOptions = spec.orq === undefined ? undefined : { apiKey: spec.orq.apiKey, serverURL: spec.orq.url, budget: false as const, context: spec.context ?? true, onError: () => undefined };
let core: { resolver: IdentityResolver<never>; close(): Promise<unknown> } | undefined;

async function fastifyApp(): Promise<Server> {
  const { default: Fastify } = await import('fastify');
  const app = Fastify();
  // @fastify/jwt's shape.
  app.addHook('onRequest', function authStandIn(request, _reply, done) {
    const id = request.headers['x-user'];
    if (typeof id === 'string') (request as { user?: unknown }).user = { sub: id };
    done();
  });
  if (map !== undefined) {
    app.decorateRequest('orqIdentity', null);
    // The floor: the same hook, one synchronous lookup and an assignment.
    app.addHook('preHandler', function mapHook(request, _reply, done) {
      const user = (request as { user?: { sub?: unknown } }).user;
      if (user !== undefined && typeof user.sub === 'string') {
        const identity = map.get(user.sub);
        if (identity !== undefined) request.orqIdentity = identity;
      }
      done();
    });
  } else {
    const { orqIdentity } = await import('../src/adapters/fastify.js');
    await app.register(orqIdentity, orqOptions ?? {});
    core = { resolver: app.orqIdentity.resolver as IdentityResolver<never>, close: () => app.close() };
  }
  app.get('/', async (request) => ({ identity: request.orqIdentity?.id ?? null }));
  await app.ready();
  return app.server;
}

async function honoApp(): Promise<Server> {
  const { Hono } = await import('hono');
  const { createAdaptorServer } = await import('@hono/node-server');
  const { orqIdentity } = await import('../src/adapters/hono.js');
  const app = new Hono<{ Variables: { jwtPayload: { sub: string }; orqIdentity: OrqIdentity | undefined } }>();
  // Hono's jwt middleware's shape.
  app.use(async function authStandIn(c, next) {
    const id = c.req.header('x-user');
    if (id !== undefined) c.set('jwtPayload', { sub: id });
    await next();
  });
  if (map !== undefined) {
    app.use(async function mapMiddleware(c, next) {
      const payload = c.get('jwtPayload') as { sub?: unknown } | undefined;
      if (payload !== undefined && typeof payload.sub === 'string') {
        const identity = map.get(payload.sub);
        if (identity !== undefined) c.set('orqIdentity', identity);
      }
      await next();
    });
  } else {
    const middleware = orqIdentity(orqOptions);
    core = middleware as unknown as typeof core;
    app.use(middleware);
  }
  app.get('/', (c) => c.json({ identity: c.get('orqIdentity')?.id ?? null }));
  return createAdaptorServer({ fetch: app.fetch }) as Server;
}

async function koaApp(): Promise<Server> {
  const { default: Koa } = await import('koa');
  const { orqIdentity } = await import('../src/adapters/koa.js');
  const app = new Koa<{ user?: { id: string }; orqIdentity?: OrqIdentity }>();
  // koa-passport's shape.
  app.use(function authStandIn(ctx, next) {
    const id = ctx.headers['x-user'];
    if (typeof id === 'string') ctx.state.user = { id };
    return next();
  });
  if (map !== undefined) {
    app.use(function mapMiddleware(ctx, next) {
      const user = ctx.state.user;
      if (user !== undefined && typeof user.id === 'string') {
        const identity = map.get(user.id);
        if (identity !== undefined) ctx.state.orqIdentity = identity;
      }
      return next();
    });
  } else {
    const middleware = orqIdentity(orqOptions);
    core = middleware as unknown as typeof core;
    app.use(middleware);
  }
  app.use((ctx) => {
    ctx.body = { identity: ctx.state.orqIdentity?.id ?? null };
  });
  const { createServer } = await import('node:http');
  return createServer(app.callback());
}

const builders: Record<Framework, () => Promise<Server>> = { fastify: fastifyApp, hono: honoApp, koa: koaApp };
const server = await builders[spec.framework]();
server.listen(0, '127.0.0.1', () => {
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
      return reply();
    case 'stats': {
      const cpu = process.cpuUsage(markCpu);
      const memory = process.memoryUsage();
      const stats: AppStats = {
        circuit: core?.resolver.circuit ?? null,
        errors: {},
        cpuMs: (cpu.user + cpu.system) / 1000,
        wallMs: performance.now() - markWall,
        heapUsedMiB: memory.heapUsed / 2 ** 20,
        heapTotalMiB: memory.heapTotal / 2 ** 20,
        gcMs: 0,
        gcMaxMs: 0,
        gcCount: 0,
        cacheSize: core?.resolver.stats().cache.size ?? map?.size ?? null,
      };
      return reply(stats);
    }
    case 'exit':
      server.closeAllConnections();
      server.close();
      void (core?.close() ?? Promise.resolve()).finally(() => process.exit(0));
      return;
  }
});
process.on('disconnect', () => process.exit(0));
