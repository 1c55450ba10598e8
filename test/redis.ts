// A real redis-server for the tests: started on a free loopback port with persistence off, killed and restarted on demand.
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { Redis as IORedis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, afterEach, describe } from 'vitest';
import { startRedisProcess, type RedisServer } from './redis-process.js';

/** True when `redis-server` is on PATH. */
export const redisInstalled = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

const installHint = 'apt-get install -y redis-server (Debian/Ubuntu) or brew install redis (macOS)';

if (!redisInstalled && process.env.CI === 'true') {
  // In CI a missing server must fail the run, not quietly skip the tests that need it.
  throw new Error(`redis-server is not installed, and CI=true: the Redis tests cannot be skipped. Install it: ${installHint}.`);
}

/**
 * `describe` for tests that need a real Redis: skipped, loudly, when redis-server is not installed
 * locally, so `npm test` still passes on a machine without it but says what it did not run.
 */
export function describeRedis(name: string, body: () => void): void {
  if (redisInstalled) {
    describe(name, body);
    return;
  }
  process.stderr.write(
    `\n!!! SKIPPED "${name}": redis-server is not installed. Install it to run these tests: ${installHint}\n`,
  );
  describe.skip(name, body);
}

export type { RedisServer } from './redis-process.js';

const started: RedisServer[] = [];
afterAll(async () => {
  await Promise.all(started.splice(0).map((server) => server.stop()));
});

/** Starts redis-server on a free 127.0.0.1 port, stopped after the file's tests. */
export async function startRedis(): Promise<RedisServer> {
  const server = await startRedisProcess();
  started.push(server);
  return server;
}

export type ClientKind = 'node-redis' | 'ioredis';
export const clientKinds: readonly ClientKind[] = ['node-redis', 'ioredis'];

const clients: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((close) => close().catch(() => undefined)));
});

/**
 * A connected client with the options docs/many-instances.md recommends: no offline queue (a command to a dead Redis fails
 * at once instead of waiting for the reconnect) and quick reconnects. No `error` listener is added: the store
 * must cope with a client that has none.
 */
export async function connectClient(kind: ClientKind, redis: RedisServer): Promise<ReturnType<typeof createClient> | IORedis> {
  if (kind === 'node-redis') {
    const client = createClient({
      url: redis.url,
      disableOfflineQueue: true,
      socket: { reconnectStrategy: (retries: number) => Math.min(50 * (retries + 1), 500), connectTimeout: 1_000 },
    });
    // No temporary listener around connect(): node-redis 5's client is a prototype proxy, and removing its last
    // listener gives the proxy an event table of its own, so listeners added later would never hear an error.
    await client.connect();
    clients.push(async () => client.destroy());
    return client;
  }
  const client = new IORedis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: (times: number) => Math.min(50 * times, 500) });
  await once(client, 'ready');
  clients.push(async () => client.disconnect());
  return client;
}
