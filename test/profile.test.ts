// Profile sync: orq's copy follows what the app supplies, off the critical path, at most once per cache lifetime.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { profileChanges, sameJson } from '../src/profile.js';
import type { OrqUser } from '../src/index.js';
import { eventually, startApp } from './helpers.js';

const profiles: Record<string, OrqUser> = {
  ada: { externalId: 'ada', displayName: 'Ada Lovelace', email: 'ada@example.com', tags: ['pro'], metadata: { plan: 'pro', seats: 3 } },
};

async function appWithProfiles(options: { syncProfile?: boolean; ttl?: number } = {}) {
  const setup = await startApp({
    middleware: {
      getUser: (req) => profiles[req.header('x-user') ?? ''],
      ...(options.syncProfile === undefined ? {} : { syncProfile: options.syncProfile }),
      ...(options.ttl === undefined ? {} : { cache: { ttl: options.ttl } }),
    },
  });
  setup.app.get('/me', (req, res) => { res.json(req.orqIdentity ?? null); });
  return { ...setup, me: () => request(setup.app).get('/me').set('x-user', 'ada') };
}

describe('profile sync', () => {
  it('PATCHes only the supplied fields that differ, in the background, and the cache then holds the update', async () => {
    const { me, emulator, middleware, errors } = await appWithProfiles();
    const seeded = emulator.seed({ externalId: 'ada', displayName: 'Ada', email: 'ada@example.com', avatarUrl: 'https://example.com/a.png', tags: ['free'], metadata: { plan: 'free' } });
    emulator.inject({ operation: 'update', kind: 'latency', ms: 1_000 });

    const first = await me().expect(200);
    // Off the critical path: the answer came before the PATCH (1 s at orq) was answered; not a timing, which load skews.
    expect(emulator.count('update')).toBe(0);
    expect(first.body.displayName).toBe('Ada');

    await eventually(() => middleware.resolver.cached('ada')?.displayName === 'Ada Lovelace', 'the PATCH to land in the cache');
    const update = emulator.calls.find((call) => call.operation === 'update');
    // By orq's id, not the external id: orq reads the path as an orq id first (another identity's, for some ids).
    expect(update?.path).toBe(`/v2/identities/${seeded._id}`);
    expect(update?.body).toEqual({ display_name: 'Ada Lovelace', tags: ['pro'], metadata: { plan: 'pro', seats: 3 } });
    const second = await me().expect(200);
    // Fields the app did not supply are kept.
    expect(second.body).toMatchObject({ displayName: 'Ada Lovelace', avatarUrl: 'https://example.com/a.png', tags: ['pro'] });
    expect(errors).toEqual([]);
  });

  it('updates at most once per cache lifetime; the next lifetime finds orq in sync', async () => {
    // A second-long lifetime: five requests and the update must fit in it on a loaded machine too.
    const { me, emulator } = await appWithProfiles({ ttl: 1_000 });
    emulator.seed({ externalId: 'ada', displayName: 'Old name' });

    for (let index = 0; index < 5; index++) await me().expect(200);
    await eventually(() => emulator.count('update') === 1, 'one update');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(emulator.count('update')).toBe(1);
    expect(emulator.count('retrieve')).toBe(1);

    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await me().expect(200)).body.displayName).toBe('Ada Lovelace');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(emulator.count('retrieve')).toBe(2);
    expect(emulator.count('update')).toBe(1);
  });

  it('sends nothing when the profile matches, whatever the key order of metadata', async () => {
    const { me, emulator } = await appWithProfiles();
    emulator.seed({ externalId: 'ada', displayName: 'Ada Lovelace', email: 'ada@example.com', tags: ['pro'], metadata: { seats: 3, plan: 'pro' } });
    await me().expect(200);
    await me().expect(200);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(emulator.count('update')).toBe(0);
  });

  it('syncProfile: false never PATCHes', async () => {
    const { me, emulator } = await appWithProfiles({ syncProfile: false });
    emulator.seed({ externalId: 'ada', displayName: 'Old' });
    await me().expect(200);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(emulator.count('update')).toBe(0);
  });

  it('a failed PATCH is reported and leaves the request and the cached identity alone', async () => {
    const { me, emulator, errors, middleware } = await appWithProfiles();
    emulator.seed({ externalId: 'ada', displayName: 'Old' });
    emulator.inject({ operation: 'update', kind: 'status', status: 500 });
    expect((await me().expect(200)).body.displayName).toBe('Old');
    await eventually(() => errors.length > 0, 'the report');
    expect(errors[0]).toMatchObject({ name: 'OrqApiError', operation: 'update' });
    expect(middleware.resolver.cached('ada')?.displayName).toBe('Old');
  });
});

describe('profileChanges', () => {
  it('ignores fields the app left out', () => {
    expect(profileChanges({ id: 'c', externalId: 'u', displayName: 'A', email: 'a@example.com' }, { externalId: 'u', email: 'a@example.com' })).toBeUndefined();
    expect(profileChanges({ id: 'c', externalId: 'u' }, { externalId: 'u', tags: [] })).toEqual({ tags: [] });
  });

  it('compares JSON deeply', () => {
    expect(sameJson({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toBe(true);
    expect(sameJson({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(sameJson({ a: 1 }, { a: 1, b: 2 })).toBe(false);
  });

  it.each([
    ['equal scalars', 'x', 'x', true],
    ['different scalars', 'x', 'y', false],
    ['null and an object', null, {}, false],
    ['an object and null', {}, null, false],
    ['a string and an object', 'x', {}, false],
    ['an object and a string', {}, 'x', false],
    ['an array and an object with the same entries', ['a'], { 0: 'a' }, false],
    ['an object and an array with the same entries', { 0: 'a' }, ['a'], false],
    ['arrays, one a prefix of the other', ['a', 'b'], ['a', 'b', 'c'], false],
    ['arrays, the other a prefix of the one', ['a', 'b', 'c'], ['a', 'b'], false],
    ['arrays differing in their last item only', ['a', 'b', 'c'], ['a', 'b', 'd'], false],
    ['empty arrays', [], [], true],
    // An undefined item travels as null and keeps its place: [undefined] is [null] on the wire, not [].
    ['an array with an undefined item and an empty one', [undefined], [], false],
    ['objects differing in one of several keys', { a: 1, b: 2, c: 3 }, { a: 1, b: 2, c: 4 }, false],
    ['objects with the same count of keys but other names', { a: 1, b: 2 }, { a: 1, c: 2 }, false],
    ['objects, one with fewer keys', { a: 1 }, { a: 1, b: 2 }, false],
    ['objects, in another key order', { a: 1, b: { c: [1] } }, { b: { c: [1] }, a: 1 }, true],
    ['objects where undefined values stand for absent keys', { a: 1, b: undefined }, { a: 1 }, true],
    ['objects where absent keys stand for undefined values', { a: 1 }, { a: 1, b: undefined }, true],
    ['nested objects differing deep down', { a: { b: { c: 1 } } }, { a: { b: { c: 2 } } }, false],
  ])('sameJson of %s is %j', (_what, a, b, same) => {
    expect(sameJson(a, b)).toBe(same);
  });

  it('lists every supplied field that differs, with the app\'s value', () => {
    const identity = { id: 'c', externalId: 'u', displayName: 'A', email: 'a@example.com', avatarUrl: 'https://example.com/a.png', tags: ['x'], metadata: { k: 1 } };
    expect(profileChanges(identity, { externalId: 'u', displayName: 'B', email: 'b@example.com', avatarUrl: 'https://example.com/b.png', tags: ['y'], metadata: { k: 2 } }))
      .toEqual({ displayName: 'B', email: 'b@example.com', avatarUrl: 'https://example.com/b.png', tags: ['y'], metadata: { k: 2 } });
    expect(profileChanges(identity, { externalId: 'u', displayName: 'A', email: 'b@example.com' })).toEqual({ email: 'b@example.com' });
  });
});

describe('profile sync of partial changes', () => {
  const seeded = { displayName: 'Ada', tags: ['pro', 'beta', 'early'], metadata: { plan: 'pro', seats: 3, limits: { daily: 10, monthly: 100 } } };

  it.each<[string, Partial<OrqUser>, Record<string, unknown>]>([
    ['the user drops one of several tags', { tags: ['pro', 'beta'] }, { tags: ['pro', 'beta'] }],
    ['the user drops the first of several tags', { tags: ['beta', 'early'] }, { tags: ['beta', 'early'] }],
    ['the user gains a tag', { tags: ['pro', 'beta', 'early', 'vip'] }, { tags: ['pro', 'beta', 'early', 'vip'] }],
    ['one metadata key of several changes', { metadata: { plan: 'pro', seats: 4, limits: { daily: 10, monthly: 100 } } }, { metadata: { plan: 'pro', seats: 4, limits: { daily: 10, monthly: 100 } } }],
    ['a nested metadata value changes', { metadata: { plan: 'pro', seats: 3, limits: { daily: 10, monthly: 200 } } }, { metadata: { plan: 'pro', seats: 3, limits: { daily: 10, monthly: 200 } } }],
    ['the user drops a metadata key', { metadata: { plan: 'pro', seats: 3 } }, { metadata: { plan: 'pro', seats: 3 } }],
  ])('%s: one PATCH with exactly that field', async (_what, change, body) => {
    const user: OrqUser = { externalId: 'ada', displayName: 'Ada', tags: seeded.tags, metadata: seeded.metadata, ...change };
    const setup = await startApp({ middleware: { getUser: () => user } });
    setup.emulator.seed({ externalId: 'ada', ...seeded });
    await setup.whoami('ada').expect(200);
    await eventually(() => setup.emulator.count('update') === 1, 'the profile PATCH');
    expect(setup.emulator.calls.find((call) => call.operation === 'update')?.body).toEqual(body);
    expect(setup.errors).toEqual([]);
  });

  it('sends nothing when only key order or undefined metadata values differ', async () => {
    const user: OrqUser = { externalId: 'ada', displayName: 'Ada', tags: ['pro', 'beta', 'early'], metadata: { limits: { monthly: 100, daily: 10 }, seats: 3, plan: 'pro', trial: undefined } };
    const setup = await startApp({ middleware: { getUser: () => user } });
    setup.emulator.seed({ externalId: 'ada', ...seeded });
    await setup.whoami('ada').expect(200);
    await setup.whoami('ada').expect(200);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(setup.emulator.count('update')).toBe(0);
  });
});
