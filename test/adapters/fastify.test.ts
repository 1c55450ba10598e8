// The Fastify plugin: the adapter contract, plus what only Fastify has (hooks after the handler, encapsulation, onClose).
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { orqIdentity, type OrqIdentityFastifyOptions } from '../../src/adapters/fastify.js';
import { currentOrqIdentity } from '../../src/index.js';
import { startEmulator } from '../helpers.js';
import { adapterContract, type AdapterHarness } from './contract.js';

/** @fastify/jwt's shape: the verified token's payload on request.user, its subject the user's id. */
function authenticate(app: FastifyInstance, hook: 'onRequest' | 'preHandler'): void {
  app.addHook(hook, async (request) => {
    const id = request.headers['x-user'];
    if (typeof id === 'string') (request as { user?: unknown }).user = { sub: id };
  });
}

async function listen(app: FastifyInstance): Promise<string> {
  return app.listen({ host: '127.0.0.1', port: 0 });
}

const harness: AdapterHarness = {
  name: 'fastify',
  misplacedFix: 'or add your preHandler hook before `app.register(orqIdentity)`',
  async start(options, routes, misplaced) {
    const app = Fastify();
    if (!misplaced) authenticate(app, 'onRequest');
    await app.register(orqIdentity, options as OrqIdentityFastifyOptions);
    // A preHandler registered after the plugin runs after its hook: the misplaced order.
    if (misplaced) authenticate(app, 'preHandler');
    app.get<{ Params: { name: string } }>('/route/:name', async (request) => {
      const answer = await (routes[request.params.name] as () => Promise<unknown>)();
      return { stored: request.orqIdentity, answer };
    });
    const url = await listen(app);
    return { url, close: () => app.close() };
  },
};

adapterContract(harness);

describe('fastify plugin', () => {
  const apps: FastifyInstance[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  async function appOnEmulator(options: Partial<OrqIdentityFastifyOptions> = {}) {
    const emulator = await startEmulator();
    const app = Fastify();
    apps.push(app);
    authenticate(app, 'onRequest');
    await app.register(orqIdentity, { apiKey: emulator.apiKey, serverURL: emulator.url, budget: false, onError: () => undefined, ...options });
    return { app, emulator };
  }

  it('keeps the context through the handler and the hooks after it, and applies to routes of child plugins (no encapsulation)', async () => {
    const { app } = await appOnEmulator();
    const seen: Array<string | null> = [];
    app.addHook('onSend', async (_request, _reply, payload) => {
      seen.push(currentOrqIdentity()?.externalId ?? null);
      return payload;
    });
    await app.register(async (child) => {
      child.get('/child', async (request) => ({ stored: request.orqIdentity?.externalId ?? null, current: currentOrqIdentity()?.externalId ?? null }));
    });
    const response = await app.inject({ method: 'GET', url: '/child', headers: { 'x-user': 'child-user' } });
    expect(response.json()).toEqual({ stored: 'child-user', current: 'child-user' });
    expect(seen).toEqual(['child-user']);
  });

  it('reaches the handler in the context after a request body was parsed', async () => {
    const { app } = await appOnEmulator();
    app.post('/body', async (request) => ({ body: request.body, current: currentOrqIdentity()?.externalId ?? null }));
    const url = await listen(app);
    const response = await fetch(`${url}/body`, { method: 'POST', headers: { 'x-user': 'poster', 'content-type': 'application/json' }, body: JSON.stringify({ n: 1 }) });
    expect(await response.json()).toEqual({ body: { n: 1 }, current: 'poster' });
  });

  it('answers 503 through setErrorHandler with the OrqUnavailableError when failOpen is false', async () => {
    const { app, emulator } = await appOnEmulator({ failOpen: false, retries: 0 });
    emulator.inject({ kind: 'status', status: 502 });
    app.setErrorHandler((error: { code?: string; status?: number }, _request, reply) => reply.status(error.status ?? 500).send({ code: error.code }));
    app.get('/x', async () => 'unreachable');
    const response = await app.inject({ method: 'GET', url: '/x', headers: { 'x-user': 'strict' } });
    expect({ status: response.statusCode, body: response.json() }).toEqual({ status: 503, body: { code: 'ORQ_IDENTITY_UNAVAILABLE' } });
  });

  it('decorates the instance with stats() and closes the core with the app', async () => {
    const { app } = await appOnEmulator();
    app.get('/x', async (request) => request.orqIdentity?.externalId ?? null);
    await app.inject({ method: 'GET', url: '/x', headers: { 'x-user': 'counted' } });
    expect(app.orqIdentity.stats().cache.size).toBe(1);
    await app.close();
    await expect(app.orqIdentity.resolver.resolve('after-close')).rejects.toThrow();
  });

  it('does not warn about the options of register itself', async () => {
    const emulator = await startEmulator();
    const app = Fastify();
    apps.push(app);
    const warnings: string[] = [];
    const listener = (warning: Error) => warnings.push(warning.message);
    process.on('warning', listener);
    try {
      await app.register(orqIdentity, { apiKey: emulator.apiKey, serverURL: emulator.url, prefix: '/ignored', logLevel: 'warn' } as OrqIdentityFastifyOptions);
      await app.ready();
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', listener);
    }
    expect(warnings.filter((message) => message.includes('prefix') || message.includes('logLevel'))).toEqual([]);
  });
});
