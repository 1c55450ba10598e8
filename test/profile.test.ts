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
    emulator.seed({ externalId: 'ada', displayName: 'Ada', email: 'ada@example.com', avatarUrl: 'https://example.com/a.png', tags: ['free'], metadata: { plan: 'free' } });
    emulator.inject({ operation: 'update', kind: 'latency', ms: 1_000 });

    const first = await me().expect(200);
    // Off the critical path: the answer came before the PATCH (1 s at orq) was answered; not a timing, which load skews.
    expect(emulator.count('update')).toBe(0);
    expect(first.body.displayName).toBe('Ada');

    await eventually(() => middleware.resolver.cached('ada')?.displayName === 'Ada Lovelace', 'the PATCH to land in the cache');
    const update = emulator.calls.find((call) => call.operation === 'update');
    expect(update?.path).toBe('/v2/identities/ada');
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
});
