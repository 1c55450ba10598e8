// Starts app instances as separate processes (fork + tsx) against one emulator and one Redis, and drives them over HTTP.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { ClientKind } from '../redis.js';

export interface InstanceSpec {
  orqUrl: string;
  apiKey: string;
  redisUrl?: string;
  client?: ClientKind;
  /** `shared` options besides the client (JSON): commandTimeoutMs, prefix. */
  shared?: Record<string, unknown>;
  /** orqIdentity options (JSON): cache, budget, timeoutMs, … */
  options?: Record<string, unknown>;
  /** The same app without the middleware: the baseline a bench compares latency against. */
  off?: boolean;
}

export interface InstanceStats {
  errors: Array<{ code: string; name: string; message: string }>;
  circuit: string;
  /** Users waiting in the registration backlog (0 without one). */
  backlog: number;
}

export interface Answer {
  status: number;
  identity: string | null;
  ms: number;
}

export interface FleetInstance {
  readonly port: number;
  /** GET /whoami as `user`, or anonymously. */
  whoami(user?: string): Promise<Answer>;
  stats(): Promise<InstanceStats>;
  /** Graceful: close() the middleware, then exit. */
  stop(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
let bundled: Promise<string> | undefined;

/**
 * The instance script bundled once per run: compiling TypeScript in every child (tsx) costs seconds per process on a
 * busy two-core machine; a bundle starts in a few hundred ms. It sits under node_modules so its packages resolve.
 */
function instanceScript(): Promise<string> {
  bundled ??= (async () => {
    const outfile = path.join(repoRoot, 'node_modules', '.cache', 'orq-identity-fleet', `instance-${process.pid}.mjs`);
    process.once('exit', () => rmSync(outfile, { force: true }));
    await build({ entryPoints: [path.join(here, 'instance.ts')], outfile, bundle: true, platform: 'node', format: 'esm', packages: 'external', target: 'node20', logLevel: 'error' });
    return outfile;
  })();
  return bundled;
}

export async function startInstance(spec: InstanceSpec): Promise<FleetInstance> {
  const child: ChildProcess = fork(await instanceScript(), [], {
    execArgv: [],
    env: { ...process.env, FLEET_SPEC: JSON.stringify(spec) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  // Ready once it listens and, with a Redis, once its client first connected (the two arrive in either order).
  // Bounded, so a Redis that never answers fails the test with what was missing instead of at vitest's timeout.
  const ready = await new Promise<{ port: number }>((resolve, reject) => {
    let port: number | undefined;
    let redisReady = spec.redisUrl === undefined;
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`fleet instance not ready after 30 s: ${port === undefined ? 'not listening' : 'listening'}, ${redisReady ? 'Redis connected' : 'Redis never connected'}`));
    }, 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fleet instance exited with ${String(code)} before it was ready`));
    });
    child.on('message', (message: { type?: string; port?: number }) => {
      if (message.type === 'ready') port = message.port as number;
      if (message.type === 'redis-ready') redisReady = true;
      if (port === undefined || !redisReady) return;
      clearTimeout(timer);
      resolve({ port });
    });
  });
  let nextId = 0;
  const ask = <T>(cmd: string) => new Promise<T>((resolve) => {
    const id = (nextId += 1);
    const onMessage = (message: { id?: number; value?: T }) => {
      if (message.id !== id) return;
      child.off('message', onMessage);
      resolve(message.value as T);
    };
    child.on('message', onMessage);
    child.send({ id, cmd });
  });
  const base = `http://127.0.0.1:${ready.port}`;
  return {
    port: ready.port,
    async whoami(user) {
      const started = performance.now();
      try {
        const response = await fetch(`${base}/whoami`, user === undefined ? {} : { headers: { 'x-user': user } });
        const body = (await response.json()) as { identity: string | null };
        return { status: response.status, identity: body.identity, ms: performance.now() - started };
      } catch {
        return { status: 0, identity: null, ms: performance.now() - started };
      }
    },
    stats: () => ask<InstanceStats>('stats'),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.send({ id: 0, cmd: 'exit' });
      await exited;
    },
  };
}

/** Starts `size` instances at once (alternating node-redis and ioredis when Redis is given). */
export async function startFleet(size: number, spec: Omit<InstanceSpec, 'client'>): Promise<FleetInstance[]> {
  return Promise.all(Array.from({ length: size }, (_, index) => startInstance({ ...spec, client: index % 2 === 0 ? 'node-redis' : 'ioredis' })));
}
