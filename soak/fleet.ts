// The soak's app processes: bundled once with esbuild (tsx in every child costs seconds of CPU per cold start on a
// shared two-core machine), forked, sampled over IPC, stopped gracefully or killed as a crash would.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { AppSample, AppSpec, AppToParent, Unhandled } from './protocol.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');

/** Builds soak/app.ts into one file under node_modules (so its packages resolve); removed when the runner exits. */
export async function bundleApp(): Promise<string> {
  const dir = path.join(repoRoot, 'node_modules', '.cache', 'orq-identity-soak');
  mkdirSync(dir, { recursive: true });
  const outfile = path.join(dir, `app-${process.pid}.mjs`);
  process.once('exit', () => rmSync(outfile, { force: true }));
  await build({ entryPoints: [path.join(here, 'app.ts')], outfile, bundle: true, platform: 'node', format: 'esm', packages: 'external', target: 'node20', logLevel: 'error' });
  return outfile;
}

export interface AppEvents {
  onUnhandled(index: number, unhandled: Unhandled): void;
  /** The process ended without being asked to (a crash). */
  onUnexpectedExit(index: number, code: number | null, signal: string | null): void;
}

/** One app instance; `start()` again after `kill()` is a cold restart (empty in-process cache). */
export class AppProcess {
  private child: ChildProcess | undefined;
  private expectingExit = false;
  private nextId = 0;
  port = 0;
  /** False while stopped, killed or restarting: the driver sends it nothing then, as a load balancer would. */
  up = false;
  /** Requests the driver has in flight to it (a kill waits for them, as a drained instance would be). */
  inFlight = 0;

  constructor(
    private readonly script: string,
    private readonly spec: AppSpec,
    private readonly events: AppEvents,
  ) {}

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    this.expectingExit = false;
    const child = fork(this.script, [], {
      execArgv: [],
      env: { ...process.env, SOAK_APP: JSON.stringify(this.spec) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child = child;
    child.on('message', (message: AppToParent) => {
      if (message.type === 'unhandled') this.events.onUnhandled(this.spec.index, message.unhandled);
    });
    child.once('exit', (code, signal) => {
      this.up = false;
      if (!this.expectingExit) this.events.onUnexpectedExit(this.spec.index, code, signal);
    });
    this.port = await new Promise<number>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`soak app ${this.spec.index} exited with ${String(code)} before it was ready`));
      child.once('exit', onExit);
      child.on('message', (message: AppToParent) => {
        if (message.type !== 'ready') return;
        child.off('exit', onExit);
        resolve(message.port);
      });
    });
    this.up = true;
  }

  /** Memory and middleware figures, or undefined when it does not answer within a second (stopped, restarting). */
  sample(): Promise<AppSample | undefined> {
    const child = this.child;
    if (child === undefined || !this.up || !child.connected) return Promise.resolve(undefined);
    const id = (this.nextId += 1);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(undefined), 1_000);
      const onMessage = (message: AppToParent) => {
        if (message.type === 'reply' && message.id === id) finish(message.sample);
      };
      const finish = (sample: AppSample | undefined) => {
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(sample);
      };
      child.on('message', onMessage);
      child.send({ id, cmd: 'sample' });
    });
  }

  /** SIGKILL, as a crash or an OOM kill: nothing is flushed or closed. */
  async kill(): Promise<void> {
    const child = this.child;
    this.up = false;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    this.expectingExit = true;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  /** Graceful: close() the middleware, then exit; SIGKILL after 5 s. */
  async stop(): Promise<void> {
    const child = this.child;
    this.up = false;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    this.expectingExit = true;
    const exited = once(child, 'exit');
    const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
    if (child.connected) child.send({ id: 0, cmd: 'exit' });
    else child.kill('SIGKILL');
    await exited;
    clearTimeout(force);
  }

  /** Last resort on the runner's own exit (synchronous). */
  killNow(): void {
    const child = this.child;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      this.expectingExit = true;
      child.kill('SIGKILL');
    }
  }
}
