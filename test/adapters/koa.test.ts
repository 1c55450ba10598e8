// The Koa middleware: the adapter contract, plus what only Koa has (ctx.state, code after await next()).
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { orqIdentity, type OrqIdentityKoaOptions, type OrqIdentityState } from '../../src/adapters/koa.js';
import { currentOrqIdentity, OrqUnavailableError } from '../../src/index.js';
import { startEmulator } from '../helpers.js';
import { adapterContract, type AdapterHarness } from './contract.js';

type State = OrqIdentityState & { user?: { id: string } };

/** koa-passport's shape: the user on ctx.state.user, its id the user's id. */
async function authenticate(ctx: Koa.ParameterizedContext<State>, next: Koa.Next): Promise<void> {
  const id = ctx.get('x-user');
  if (id !== '') ctx.state.user = { id };
  await next();
}

async function listen(app: Koa<State>): Promise<{ url: string; close(): Promise<void> }> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((done) => server.close(() => done())) };
}

const harness: AdapterHarness = {
  name: 'koa',
  misplacedFix: 'app.use(auth); app.use(orqIdentity())',
  async start(options, routes, misplaced) {
    const app = new Koa<State>();
    // The 503 of failOpen: false is expected here: Koa need not print it.
    app.silent = true;
    const identity = orqIdentity(options as OrqIdentityKoaOptions);
    if (misplaced) app.use(identity).use(authenticate);
    else app.use(authenticate).use(identity);
    app.use(async (ctx) => {
      const name = /^\/route\/(\w+)$/.exec(ctx.path)?.[1] ?? '';
      const answer = await (routes[name] as () => Promise<unknown>)();
      ctx.body = { stored: ctx.state.orqIdentity ?? null, answer };
    });
    const server = await listen(app);
    return { url: server.url, close: async () => { await server.close(); await identity.close({ timeoutMs: 1_000 }); } };
  },
};

adapterContract(harness);

describe('koa middleware', () => {
  const closers: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
  });

  async function appOnEmulator(options: Partial<OrqIdentityKoaOptions> = {}) {
    const emulator = await startEmulator();
    const identity = orqIdentity({ apiKey: emulator.apiKey, serverURL: emulator.url, budget: false, onError: () => undefined, ...options });
    closers.push(() => identity.close({ timeoutMs: 1_000 }));
    return { identity, emulator };
  }

  it("keeps the context in downstream middleware's code after its await next()", async () => {
    const { identity } = await appOnEmulator();
    const app = new Koa<State>();
    const seen: Array<string | null> = [];
    app.use(authenticate).use(identity).use(async (ctx, next) => {
      await next();
      seen.push(currentOrqIdentity()?.externalId ?? null);
    });
    app.use(async (ctx) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      ctx.body = { stored: ctx.state.orqIdentity?.externalId ?? null };
    });
    const server = await listen(app);
    closers.push(() => server.close());
    const response = await fetch(`${server.url}/`, { headers: { 'x-user': 'koa-user' } });
    expect(await response.json()).toEqual({ stored: 'koa-user' });
    expect(seen).toEqual(['koa-user']);
  });

  it('fails closed by throwing the OrqUnavailableError (status 503) to Koa, which does not expose its message', async () => {
    const { identity, emulator } = await appOnEmulator({ failOpen: false, retries: 0 });
    emulator.inject({ kind: 'status', status: 502 });
    const app = new Koa<State>();
    const seen: unknown[] = [];
    app.on('error', (error: unknown) => seen.push(error));
    app.use(authenticate).use(identity).use((ctx) => {
      ctx.body = 'unreachable';
    });
    const server = await listen(app);
    closers.push(() => server.close());
    const response = await fetch(`${server.url}/`, { headers: { 'x-user': 'strict' } });
    expect({ status: response.status, body: await response.text() }).toEqual({ status: 503, body: 'Service Unavailable' });
    expect(seen[0]).toBeInstanceOf(OrqUnavailableError);
  });
});
