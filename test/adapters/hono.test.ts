// The Hono middleware on @hono/node-server: the adapter contract, plus what only Hono has (typed variables, HTTPException).
import { serve, type ServerType } from '@hono/node-server';
import { Hono, type Context, type Next } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { afterEach, describe, expect, it } from 'vitest';
import { orqIdentity, type OrqIdentityHonoOptions, type OrqIdentityVariables } from '../../src/adapters/hono.js';
import { currentOrqIdentity, OrqUnavailableError } from '../../src/index.js';
import { startEmulator } from '../helpers.js';
import { adapterContract, type AdapterHarness } from './contract.js';

type AppEnv = { Variables: OrqIdentityVariables & { jwtPayload: { sub: string } } };

/** Hono's jwt middleware's shape: the verified payload as c.get('jwtPayload'), its subject the user's id. */
async function authenticate(c: Context<AppEnv>, next: Next): Promise<void> {
  const id = c.req.header('x-user');
  if (id !== undefined) c.set('jwtPayload', { sub: id });
  await next();
}

function listen(app: Hono<AppEnv>): Promise<{ url: string; close(): Promise<void> }> {
  return new Promise((resolve) => {
    const server: ServerType = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => {
      resolve({ url: `http://127.0.0.1:${info.port}`, close: () => new Promise<void>((done) => server.close(() => done())) });
    });
  });
}

const harness: AdapterHarness = {
  name: 'hono',
  misplacedFix: 'app.use(jwt(...)); app.use(orqIdentity())',
  async start(options, routes, misplaced) {
    const app = new Hono<AppEnv>();
    const identity = orqIdentity(options as OrqIdentityHonoOptions);
    if (misplaced) app.use(identity, authenticate);
    else app.use(authenticate, identity);
    app.get('/route/:name', async (c) => {
      const answer = await (routes[c.req.param('name')] as () => Promise<unknown>)();
      return c.json({ stored: c.get('orqIdentity') ?? null, answer });
    });
    const server = await listen(app);
    return { url: server.url, close: async () => { await server.close(); await identity.close({ timeoutMs: 1_000 }); } };
  },
};

adapterContract(harness);

describe('hono middleware', () => {
  const closers: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
  });

  async function appOnEmulator(options: Partial<OrqIdentityHonoOptions> = {}) {
    const emulator = await startEmulator();
    const identity = orqIdentity({ apiKey: emulator.apiKey, serverURL: emulator.url, budget: false, onError: () => undefined, ...options });
    closers.push(() => identity.close({ timeoutMs: 1_000 }));
    const app = new Hono<AppEnv>();
    app.use(authenticate, identity);
    return { app, emulator };
  }

  it("types c.var.orqIdentity and keeps the context across the handler's awaits", async () => {
    const { app } = await appOnEmulator();
    app.get('/x', async (c) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      return c.json({ stored: c.var.orqIdentity?.externalId ?? null, current: currentOrqIdentity()?.externalId ?? null });
    });
    const first = await app.request('/x', { headers: { 'x-user': 'hono-user' } });
    expect(await first.json()).toEqual({ stored: 'hono-user', current: 'hono-user' });
  });

  it('fails closed with an HTTPException(503) whose cause is the OrqUnavailableError, for app.onError', async () => {
    const { app, emulator } = await appOnEmulator({ failOpen: false, retries: 0 });
    emulator.inject({ kind: 'status', status: 502 });
    let seen: unknown;
    app.onError((error, c) => {
      seen = error;
      return error instanceof HTTPException ? error.getResponse() : c.text('unexpected', 500);
    });
    app.get('/x', (c) => c.text('unreachable'));
    const response = await app.request('/x', { headers: { 'x-user': 'strict' } });
    expect(response.status).toBe(503);
    expect(seen).toBeInstanceOf(HTTPException);
    expect((seen as HTTPException).cause).toBeInstanceOf(OrqUnavailableError);
  });
});
