// The request's identity downstream, without `req`: across awaits, timers and streams, never another request's.
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { currentOrqIdentity, currentOrqUser, InvalidUserError, orqIdentity, runWithOrqIdentity, runWithOrqUser, type OrqIdentity } from '../src/index.js';
import { expressVersions, startApp, startEmulator } from './helpers.js';

/** A "service" deep in the app: it never sees `req`. */
async function serviceThatAwaits(): Promise<string | undefined> {
  await sleep(Math.floor(Math.random() * 15));
  await new Promise<void>((resolve) => setImmediate(resolve));
  return currentOrqIdentity()?.externalId;
}

describe.each(expressVersions)('currentOrqIdentity under %s', (_name, createApp) => {
  it('gives each of 50 interleaved concurrent users only their own identity, after awaits, timers and streams', async () => {
    // A generous wait: this is about whose identity, not how fast, and a loaded machine must not turn it into "none".
    const { app, whoami } = await startApp({ express: createApp, middleware: { timeoutMs: 10_000 } });
    app.get('/deep', async (req, res) => {
      const afterAwait = await serviceThatAwaits();
      const inTimer = await new Promise<string | undefined>((resolve) => setTimeout(() => resolve(currentOrqIdentity()?.externalId), 5));
      const stream = Readable.from(['a', 'b']);
      const inStream: Array<string | undefined> = [];
      stream.on('data', () => inStream.push(currentOrqIdentity()?.externalId));
      await once(stream, 'end');
      res.json({ attached: req.orqIdentity?.externalId, afterAwait, inTimer, inStream });
    });
    const users = Array.from({ length: 50 }, (_, index) => `ctx-user-${index}`);
    // Register all first, so the concurrent round runs on the synchronous cache-hit path as well.
    await Promise.all(users.slice(0, 25).map((user) => whoami(user).expect(200)));

    const responses = await Promise.all(
      [...users, ...users].map((user) => request(app).get('/deep').set('x-user', user).then((response) => [user, response.body] as const)),
    );
    for (const [user, body] of responses) {
      expect(body).toEqual({ attached: user, afterAwait: user, inTimer: user, inStream: [user, user] });
    }
  });

  it('is undefined for anonymous requests and outside requests', async () => {
    const { whoami } = await startApp({ express: createApp });
    expect((await whoami().expect(200)).body.current).toBeNull();
    expect(currentOrqIdentity()).toBeUndefined();
    expect(currentOrqUser()).toBeUndefined();
  });

  it('currentOrqUser gives the user of a cached identity, the same frozen object on every request', async () => {
    const { app, whoami } = await startApp({ express: createApp });
    const users: unknown[] = [];
    app.get('/user', (_req, res) => {
      users.push(currentOrqUser());
      res.json(currentOrqUser() ?? null);
    });
    await whoami('frame-user').expect(200);
    for (let i = 0; i < 3; i++) {
      expect((await request(app).get('/user').set('x-user', 'frame-user').expect(200)).body).toMatchObject({ externalId: 'frame-user' });
    }
    // One frame per cached identity, not one per request: the hot path allocates nothing for the context.
    expect(new Set(users).size).toBe(1);
    expect(Object.isFrozen(users[0])).toBe(true);
  });
});

describe('context option', () => {
  it('context: false attaches to req only', async () => {
    const { whoami } = await startApp({ middleware: { context: false } });
    const response = await whoami('no-context').expect(200);
    expect(response.body.identity?.externalId).toBe('no-context');
    expect(response.body.current).toBeNull();
  });

  it('runWithOrqIdentity sets the identity for background work', async () => {
    const identity: OrqIdentity = { id: 'contact_x', externalId: 'job-user' };
    const seen = await runWithOrqIdentity(identity, async () => {
      await sleep(1);
      return currentOrqIdentity();
    });
    expect(seen).toBe(identity);
    expect(currentOrqIdentity()).toBeUndefined();
  });

  it('runWithOrqIdentity also sets the current user, from the identity', () => {
    const identity: OrqIdentity = Object.freeze({ id: 'contact_y', externalId: 'job-user-2', displayName: 'Job', tags: Object.freeze(['a']) });
    expect(runWithOrqIdentity(identity, () => currentOrqUser())).toEqual({ externalId: 'job-user-2', displayName: 'Job', tags: ['a'] });
  });

  it('runWithOrqUser sets a checked user without an identity, and refuses a user orq would refuse', async () => {
    const seen = await runWithOrqUser({ externalId: 'job-only', email: 'nope' }, async () => {
      await sleep(1);
      return { user: currentOrqUser(), identity: currentOrqIdentity() };
    });
    expect(seen).toEqual({ user: { externalId: 'job-only' }, identity: undefined });
    expect(runWithOrqUser('by-id', () => currentOrqUser())).toEqual({ externalId: 'by-id' });
    expect(() => runWithOrqUser('..', () => undefined)).toThrow(InvalidUserError);
  });

  it('holds on the slow (first-request) path too', async () => {
    const emulator = await startEmulator({ latencyMs: 20 });
    const middleware = orqIdentity({ apiKey: emulator.apiKey, serverURL: emulator.url, getUser: (req) => req.header('x-user') });
    const app = express();
    app.use(middleware);
    app.get('/', async (_req, res) => {
      await sleep(2);
      res.json({ current: currentOrqIdentity()?.externalId ?? null });
    });
    const responses = await Promise.all(['s1', 's2', 's3'].map((user) => request(app).get('/').set('x-user', user)));
    expect(responses.map((response) => response.body.current)).toEqual(['s1', 's2', 's3']);
    await middleware.close();
  });
});
