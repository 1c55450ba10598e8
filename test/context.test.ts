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

describe('the user the context gives', () => {
  it('from an identity: exactly the profile fields the identity has, no keys for the ones it lacks', () => {
    const full: OrqIdentity = Object.freeze({
      id: 'contact_full', externalId: 'full', displayName: 'Full', email: 'full@example.com', avatarUrl: 'https://example.com/f.png',
      tags: Object.freeze(['a']), metadata: Object.freeze({ plan: 'pro' }),
    });
    const user = runWithOrqIdentity(full, () => currentOrqUser());
    // toStrictEqual: a key present with the value undefined is a difference here (it shows in Object.keys and `in`).
    expect(user).toStrictEqual({
      externalId: 'full', displayName: 'Full', email: 'full@example.com', avatarUrl: 'https://example.com/f.png', tags: ['a'], metadata: { plan: 'pro' },
    });
    expect(Object.isFrozen(user)).toBe(true);
    const bare = runWithOrqIdentity(Object.freeze({ id: 'contact_bare', externalId: 'bare' }), () => currentOrqUser());
    expect(Object.keys(bare ?? {})).toEqual(['externalId']);
  });

  it('from runWithOrqUser: its own frozen copy of the tags, so the caller changing its array later changes nothing', () => {
    const tags = ['one'];
    const seen = runWithOrqUser({ externalId: 'tagged', tags }, () => {
      tags.push('two');
      return currentOrqUser();
    });
    expect(seen?.tags).toEqual(['one']);
    expect(Object.isFrozen(seen?.tags)).toBe(true);
    expect(Object.isFrozen(seen)).toBe(true);
    expect(runWithOrqUser({ externalId: 'untagged' }, () => Object.keys(currentOrqUser() ?? {}))).toEqual(['externalId']);
  });

  it('on a request that looked the user up: the profile getUser gave this time, beside the identity orq holds', async () => {
    const { app, emulator } = await startApp({ middleware: { syncProfile: false, getUser: () => ({ externalId: 'renamed-user', displayName: 'New name' }) } });
    emulator.seed({ externalId: 'renamed-user', displayName: 'Old name' });
    app.get('/both', (_req, res) => {
      res.json({ user: currentOrqUser()?.displayName, identity: currentOrqIdentity()?.displayName });
    });
    expect((await request(app).get('/both').expect(200)).body).toEqual({ user: 'New name', identity: 'Old name' });
    // Cached from then on: the context holds the identity alone, and the user is read from it.
    expect((await request(app).get('/both').expect(200)).body).toEqual({ user: 'Old name', identity: 'Old name' });
  });

  it('is found by another copy of the package (an ESM and a CJS build, two installs) under the documented global keys', async () => {
    // What a copy loaded from elsewhere does: it shares the store by these Symbol.for keys, never by module identity.
    const storage = (globalThis as Record<symbol, { getStore(): unknown } | undefined>)[Symbol.for('express-orq-identity.request-store.v2')];
    const frameBrand = Symbol.for('express-orq-identity.request-frame');
    const identity: OrqIdentity = Object.freeze({ id: 'contact_shared', externalId: 'shared' });
    expect(runWithOrqIdentity(identity, () => storage?.getStore())).toBe(identity);
    const frame = runWithOrqUser('framed', () => storage?.getStore()) as Record<symbol | string, unknown> | undefined;
    expect(frame?.[frameBrand]).toBe(true);
    expect(frame?.user).toEqual({ externalId: 'framed' });
  });
});
