// A real redis-server for the tests: started on a free loopback port with persistence off, killed and restarted on demand.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, Socket } from 'node:net';
import { Redis as IORedis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, afterEach, describe } from 'vitest';

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

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** True between start/restart and kill/stop. */
  readonly running: boolean;
  /** SIGKILL: the server disappears as in a crash; clients see their connections reset. */
  kill(): Promise<void>;
  /** Starts again on the same port (empty: persistence is off). */
  restart(): Promise<void>;
  /** SIGSTOP: the server keeps its connections but answers nothing, as a stalled Redis does. */
  freeze(): void;
  /** SIGCONT after freeze. */
  thaw(): void;
  /** A raw command over a short-lived connection, for test setup and checks (RESP replies read loosely). */
  command(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

const started: RedisServer[] = [];
afterAll(async () => {
  await Promise.all(started.splice(0).map((server) => server.stop()));
});

/** Starts redis-server on a free 127.0.0.1 port, stopped after the file's tests. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;

  async function launch(): Promise<void> {
    const process = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--loglevel', 'warning'],
      { stdio: 'ignore' },
    );
    child = process;
    await waitForPing(port, 5_000);
  }

  async function kill(): Promise<void> {
    const process = child;
    child = undefined;
    if (process === undefined || process.exitCode !== null) return;
    const exited = once(process, 'exit');
    process.kill('SIGKILL');
    process.kill('SIGCONT');
    await exited;
  }

  await launch();
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== undefined;
    },
    kill,
    restart: launch,
    freeze: () => child?.kill('SIGSTOP'),
    thaw: () => child?.kill('SIGCONT'),
    command: (...args) => rawCommand(port, args),
    stop: kill,
  };
  started.push(server);
  return server;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

async function waitForPing(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await rawCommand(port, ['PING'])).includes('PONG')) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Sends one command in RESP and returns the raw reply text once it looks complete (enough for tests). */
function rawCommand(port: number, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis ${args[0] ?? ''} timed out`));
    }, 1_000);
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.endsWith('\r\n')) {
        clearTimeout(timer);
        socket.end();
        resolve(reply);
      }
    });
    socket.connect(port, '127.0.0.1', () => {
      socket.write(`*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`);
    });
  });
}

export type ClientKind = 'node-redis' | 'ioredis';
export const clientKinds: readonly ClientKind[] = ['node-redis', 'ioredis'];

const clients: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((close) => close().catch(() => undefined)));
});

/**
 * A connected client with the options the README recommends: no offline queue (a command to a dead Redis fails
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
