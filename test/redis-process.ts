// A redis-server child process on a free loopback port, persistence off; used by the tests (redis.ts) and the bench.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, Socket } from 'node:net';

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

/** Starts redis-server on a free 127.0.0.1 port with persistence off; the caller stops it. */
export async function startRedisProcess(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;

  async function launch(): Promise<void> {
    const process = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--loglevel', 'warning'],
      { stdio: 'ignore' },
    );
    child = process;
    // Never outlive the tests or the bench, even when they crash.
    const killOnExit = () => process.kill('SIGKILL');
    globalThis.process.once('exit', killOnExit);
    process.once('exit', () => globalThis.process.off('exit', killOnExit));
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

