// One app instance of a fleet, in its own process: Express 5 + orqIdentity on a shared Redis (node-redis or ioredis).
// Started by startInstance (fleet.ts) with the spec in FLEET_SPEC; answers `stats` and `exit` over IPC.
import express, { type NextFunction, type Request, type Response } from 'express';
import { Redis as IORedis } from 'ioredis';
import type { AddressInfo } from 'node:net';
import { createClient } from 'redis';
import { orqIdentity, type OrqIdentityOptions } from '../../src/index.js';
import type { InstanceSpec, InstanceStats } from './fleet.js';

const spec = JSON.parse(process.env.FLEET_SPEC ?? '{}') as InstanceSpec;
const errors: InstanceStats['errors'] = [];

async function redisClient(): Promise<unknown> {
  if (spec.redisUrl === undefined) return undefined;
  // The parent hears when Redis first answered: the app does not wait for it, but a test that counts orq calls
  // must, or a request sent before the connection is up works alone (and rightly says so in onError).
  const connected = () => process.send?.({ type: 'redis-ready' });
  if (spec.client === 'ioredis') {
    // The options docs/many-instances.md recommends: fail a command at once while disconnected, reconnect quickly.
    const client = new IORedis(spec.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: (times) => Math.min(50 * times, 500) });
    client.once('ready', connected);
    return client;
  }
  const client = createClient({
    url: spec.redisUrl,
    disableOfflineQueue: true,
    socket: { reconnectStrategy: (retries: number) => Math.min(50 * (retries + 1), 500), connectTimeout: 1_000 },
  });
  client.once('ready', connected);
  // Startup never waits on Redis: connect in the background; the store is skipped until it answers.
  client.connect().catch(() => undefined);
  return client;
}

const redis = await redisClient();
const middleware = orqIdentity({
  apiKey: spec.apiKey,
  serverURL: spec.orqUrl,
  ...(redis === undefined ? {} : { shared: { ...spec.shared, redis: redis as NonNullable<OrqIdentityOptions['shared']>['redis'] } }),
  ...(spec.options as Partial<OrqIdentityOptions>),
  onError: (error) => {
    errors.push({ code: error.code, name: error.name, message: error.message });
  },
});

const app = express();
app.use((req: Request, _res: Response, next: NextFunction) => {
  const id = req.headers['x-user'];
  if (typeof id === 'string') (req as { user?: unknown }).user = { id };
  next();
});
if (spec.off !== true) app.use(middleware);
app.get('/whoami', (req: Request, res: Response) => {
  res.json({ identity: req.orqIdentity?.id ?? null });
});

const server = app.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'ready', port: (server.address() as AddressInfo).port });
});
server.keepAliveTimeout = 60_000;

process.on('message', (message: { id: number; cmd: string }) => {
  if (message.cmd === 'stats') {
    const stats: InstanceStats = { errors, circuit: middleware.resolver.circuit, backlog: middleware.stats().backlog?.length ?? 0 };
    process.send?.({ id: message.id, value: stats });
    return;
  }
  if (message.cmd === 'exit') {
    server.closeAllConnections();
    server.close();
    void middleware.close({ timeoutMs: 500 }).finally(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
