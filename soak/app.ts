// One app instance of the soak, in its own process: Express 5, an auth stand-in, orqIdentity on the shared Redis,
// and a route that may make an LLM call through the real openai SDK with orqIdentityFetch(). Started by fleet.ts with
// the spec in SOAK_APP; answers `sample` and `exit` over IPC and reports every unhandled rejection or exception.
import express, { type NextFunction, type Request, type Response } from 'express';
import { Redis as IORedis } from 'ioredis';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { createClient } from 'redis';
import { orqIdentity, orqIdentityFetch, type OrqIdentityOptions } from '../src/index.js';
import type { AppSample, AppSpec, AppToParent, Unhandled } from './protocol.js';

const spec = JSON.parse(process.env.SOAK_APP ?? '{}') as AppSpec;

function reportUnhandled(kind: Unhandled['kind'], error: unknown): void {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  process.stderr.write(`[soak app ${spec.index}] ${kind}: ${error instanceof Error ? error.stack ?? message : message}\n`);
  send({ type: 'unhandled', unhandled: { kind, message } });
}
// Counted, not fatal: the soak wants every one of them, and the process to go on serving so the run shows what follows.
process.on('unhandledRejection', (reason) => reportUnhandled('unhandledRejection', reason));
process.on('uncaughtException', (error) => reportUnhandled('uncaughtException', error));

function send(message: AppToParent): void {
  if (process.connected) process.send?.(message);
}

async function redisClient(): Promise<NonNullable<OrqIdentityOptions['shared']>['redis']> {
  if (spec.client === 'ioredis') {
    // The README's recommended options: fail a command at once while disconnected, reconnect quickly.
    return new IORedis(spec.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: (times) => Math.min(50 * times, 500) });
  }
  const client = createClient({
    url: spec.redisUrl,
    disableOfflineQueue: true,
    socket: { reconnectStrategy: (retries: number) => Math.min(50 * (retries + 1), 500), connectTimeout: 1_000 },
  });
  // Start-up never waits on Redis: connect in the background; the store is skipped until it answers.
  client.connect().catch(() => undefined);
  return client as unknown as NonNullable<OrqIdentityOptions['shared']>['redis'];
}

const errorsByCode: Record<string, number> = {};
const middleware = orqIdentity({
  apiKey: spec.apiKey,
  serverURL: spec.orqUrl,
  shared: { redis: await redisClient() },
  // The soak ramps up from an empty cache to hundreds of users in its first minutes (two calls each); the default
  // budget (60 calls a minute) would spread that over a quarter of an hour. Measured: what the fleet calls, not what it may.
  budget: { calls: 3_000, windowMs: 60_000 },
  onError: (error) => {
    errorsByCode[error.code] = (errorsByCode[error.code] ?? 0) + 1;
  },
});

const openai = new OpenAI({
  apiKey: spec.apiKey,
  baseURL: `${spec.orqUrl}/v2/router`,
  fetch: orqIdentityFetch({ origins: [spec.orqUrl] }),
  timeout: 5_000,
  maxRetries: 0,
});

const app = express();
app.use(function authStandIn(req: Request, _res: Response, next: NextFunction) {
  const id = req.headers['x-user'];
  if (typeof id === 'string') (req as { user?: unknown }).user = { id };
  next();
});
app.use(middleware);
app.get('/work', async (req: Request, res: Response) => {
  const identity = req.orqIdentity;
  let llm = false;
  if (req.query.llm === '1') {
    // The request id rides along so the driver can match the call orq saw to the user of this request.
    const requestId = String(req.headers['x-soak-request'] ?? '');
    await openai.chat.completions.create(
      { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello.' }] },
      { headers: { 'x-soak-request': requestId } },
    );
    llm = true;
  }
  res.json({ identity: identity?.id ?? null, externalId: identity?.externalId ?? null, llm });
});

const server = app.listen(0, '127.0.0.1', () => {
  send({ type: 'ready', port: (server.address() as AddressInfo).port });
});
server.keepAliveTimeout = 60_000;

process.on('message', (message: { id: number; cmd: string }) => {
  if (message.cmd === 'sample') {
    const memory = process.memoryUsage();
    const stats = middleware.stats();
    const sample: AppSample = {
      rssMiB: memory.rss / 2 ** 20,
      heapUsedMiB: memory.heapUsed / 2 ** 20,
      cacheSize: stats.cache.size,
      circuit: stats.circuit.state,
      errorsByCode: { ...errorsByCode },
    };
    send({ type: 'reply', id: message.id, sample });
    return;
  }
  if (message.cmd === 'exit') {
    server.closeAllConnections();
    server.close();
    void middleware.close({ timeoutMs: 1_000 }).finally(() => process.exit(0));
  }
});
// The soak runner gone (crashed, killed): never outlive it.
process.on('disconnect', () => process.exit(0));
