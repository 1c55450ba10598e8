// Shared setup: a real Express app (4 or 5) with a tiny auth layer and orqIdentity, in front of a fresh emulator.
import { Orq } from '@orq-ai/node';
import express5 from 'express';
import express4 from 'express4';
import type { Express, NextFunction, Request, Response } from 'express';
import request from 'supertest';
import { afterEach, beforeEach, vi } from 'vitest';
import { currentOrqIdentity, orqIdentity, type OrqIdentityError, type OrqIdentityMiddleware, type OrqIdentityOptions } from '../src/index.js';
import { startOrqEmulator, type OrqEmulator, type OrqEmulatorOptions } from '../src/testing/index.js';

type ExpressFactory = () => Express;

/** Every middleware behaviour is checked under both majors the peer range allows. */
export const expressVersions: ReadonlyArray<readonly [string, ExpressFactory]> = [
  ['express 5', express5 as unknown as ExpressFactory],
  ['express 4', express4 as unknown as ExpressFactory],
];

export const shapes = ['documented', 'sdk'] as const;

/**
 * How the package reaches orq: 'fetch' is the default path (apiKey + serverURL, our own transport, the SDK
 * never loaded); 'sdk' is an app handing in its own `new Orq(...)`. Suites where the wire matters run both.
 */
export const transports = ['fetch', 'sdk'] as const;
export type Transport = (typeof transports)[number];

/** The options that make orqIdentity or createIdentityResolver reach `emulator` through `transport`. */
export function connectionFor(transport: Transport, emulator: Pick<OrqEmulator, 'apiKey' | 'url'>): { apiKey: string; serverURL: string } | { client: Orq } {
  return transport === 'sdk' ? { client: orqClientFor(emulator) } : { apiKey: emulator.apiKey, serverURL: emulator.url };
}

export interface TestApp {
  emulator: OrqEmulator;
  app: Express;
  middleware: OrqIdentityMiddleware;
  /** Everything onError received, in order. */
  errors: OrqIdentityError[];
  /** GET /whoami as the given user (x-user header), or anonymously. */
  whoami(user?: string): request.Test;
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

export async function startEmulator(options: OrqEmulatorOptions = {}): Promise<OrqEmulator> {
  const emulator = await startOrqEmulator(options);
  cleanups.push(() => emulator.close());
  return emulator;
}

export function orqClientFor(emulator: Pick<OrqEmulator, 'apiKey' | 'url'>): Orq {
  return new Orq({ apiKey: emulator.apiKey, serverURL: emulator.url });
}

/**
 * The app: a bearer-less stand-in for passport (x-user → req.user.id, x-name → a display name),
 * orqIdentity, then /whoami answering with what the request saw on `req` and in the async context.
 */
export async function startApp(
  options: {
    express?: ExpressFactory;
    emulator?: OrqEmulatorOptions;
    /** Defaults to 'fetch', the path an app that passes no client takes. */
    transport?: Transport;
    middleware?: Partial<OrqIdentityOptions>;
  } = {},
): Promise<TestApp> {
  const emulator = await startEmulator(options.emulator);
  const errors: OrqIdentityError[] = [];
  const middleware = orqIdentity({
    ...connectionFor(options.transport ?? 'fetch', emulator),
    onError: (error) => errors.push(error),
    // No call budget unless a test asks for one: bursts of 50 users here test other things, and the default
    // (60 calls a minute) would spread them over minutes. The budget has its own tests.
    budget: false,
    ...options.middleware,
  });
  cleanups.push(() => middleware.close({ timeoutMs: 1_000 }));
  const app = (options.express ?? (express5 as unknown as ExpressFactory))();
  app.use((req: Request, _res: Response, next: NextFunction) => {
    const id = req.header('x-user');
    if (id !== undefined) (req as { user?: unknown }).user = { id };
    next();
  });
  app.use(middleware);
  app.get('/whoami', async (req: Request, res: Response) => {
    const before = currentOrqIdentity();
    await new Promise((resolve) => setTimeout(resolve, 1));
    res.json({ identity: req.orqIdentity ?? null, current: currentOrqIdentity() ?? null, before: before ?? null });
  });
  return { emulator, app, middleware, errors, whoami: (user) => (user === undefined ? request(app).get('/whoami') : request(app).get('/whoami').set('x-user', user)) };
}

/**
 * Waits until `condition` holds, polling; fails the test with `what` if it never does. Timed on the monotonic
 * clock, so it also times out in a test that freezes Date (`vi.useFakeTimers({ toFake: ['Date'] })`).
 */
export async function eventually(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const started = performance.now();
  while (!condition()) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface CapturedWarning {
  message: string;
  code: string | undefined;
}

/** For every test of the calling file, collects process warnings (emptied before each test) instead of printing them. */
export function captureWarnings(): CapturedWarning[] {
  const warnings: CapturedWarning[] = [];
  beforeEach(() => {
    warnings.length = 0;
    vi.spyOn(process, 'emitWarning').mockImplementation(((message: string, options?: { code?: string }) => {
      warnings.push({ message, code: options?.code });
    }) as typeof process.emitWarning);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });
  return warnings;
}

/** The simplest auth layer: the user the `x-user` header names, as `req.user = { id }` (what getUser reads by default). */
export function userFromHeader(req: Request, _res: Response, next: NextFunction): void {
  (req as { user?: unknown }).user = { id: req.header('x-user') };
  next();
}
