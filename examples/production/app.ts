// A production-shaped app: one orqIdentity instance, a /healthz built on stats() that it never looks up, and a
// route slow enough to show that shutdown lets requests in flight finish.
import express, { type Express } from 'express';
import { orqIdentity, type OrqIdentityMiddleware, type OrqIdentityOptions, type OrqIdentityStats } from '../../src/index.js';

/** What /healthz answers: the app is up whatever orq does (failOpen), so orq trouble is `degraded`, not down. */
export interface Health {
  status: 'ok' | 'degraded';
  orqIdentity: Pick<OrqIdentityStats, 'cache' | 'circuit' | 'queue'> & { lookupsInFlight: number; failedLookups: number };
}

export function health(stats: OrqIdentityStats): Health {
  return {
    // A restart would not bring orq back: report the open circuit, but keep answering 200 so no probe kills the app.
    status: stats.circuit.state === 'open' ? 'degraded' : 'ok',
    orqIdentity: {
      cache: stats.cache,
      circuit: stats.circuit,
      queue: stats.queue,
      lookupsInFlight: stats.lookups.inFlight,
      failedLookups: stats.lookups.failed,
    },
  };
}

export function createApp(options: OrqIdentityOptions = {}): { app: Express; identity: OrqIdentityMiddleware } {
  const app = express();
  // Created once, at start-up, and shared by every route that needs it.
  const identity = orqIdentity({
    // Stands in for your auth layer: passport, express-jwt or Clerk are read without a getUser.
    getUser: (req) => req.header('x-user-id'),
    // Probes come every few seconds and carry no user: never worth a lookup.
    skip: (req) => req.path === '/healthz',
    // Your logger instead of console.warn: one structured line per failure.
    onError: (error) => console.warn(JSON.stringify({ level: 'warn', source: 'orq-identity', code: error.code, message: error.message })),
    ...options,
  });
  app.use(identity);
  app.get('/healthz', (_req, res) => {
    res.json(health(identity.stats()));
  });
  app.get('/me', (req, res) => {
    res.json({ identity: req.orqIdentity ?? null });
  });
  app.get('/slow', async (req, res) => {
    await new Promise((resolve) => setTimeout(resolve, Number(req.query.ms ?? 300)));
    res.json({ identity: req.orqIdentity?.externalId ?? null });
  });
  return { app, identity };
}
