// Whatever getUser returns (getters, Proxies, numbers, odd Unicode), the request goes on and onError hears why.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { InvalidProfileFieldError, InvalidUserError, OrqIdentityError } from '../src/index.js';
import { startApp } from './helpers.js';
import { withoutUnhandledRejections } from './unhandled.js';

const throwingId = (): object => ({ get externalId(): string { throw new Error('getter boom'); } });
const revoked = (): object => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
};

describe('a user object that throws when read (issue 8 point 2)', () => {
  it.each([
    ['an async getUser whose externalId getter throws', () => Promise.resolve(throwingId())],
    ['a sync getUser whose externalId getter throws', throwingId],
    ['a revoked Proxy', revoked],
    ['an async revoked Proxy', async () => revoked()],
    ['a Proxy whose get trap throws', () => new Proxy({}, { get() { throw new Error('trap boom'); } })],
  ])('%s: the request goes on, InvalidUserError reported, nothing unhandled', async (_what, getUser) => {
    await withoutUnhandledRejections(async () => {
      const { app, emulator, errors } = await startApp({ middleware: { getUser: getUser as never } });
      app.get('/hello', (req, res) => { res.json({ identity: req.orqIdentity ?? null }); });
      const response = await request(app).get('/hello').timeout(2_000).expect(200);
      expect(response.body.identity).toBeNull();
      expect(emulator.count()).toBe(0);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(OrqIdentityError);
      expect(errors[0]?.message).toMatch(/(reading the external id threw|getUser threw)/);
    });
  });

  it('a thenable whose `then` getter throws is reported as a getUser failure', async () => {
    await withoutUnhandledRejections(async () => {
      const thenable = { get then(): never { throw new Error('then boom'); } };
      const { app, errors } = await startApp({ middleware: { getUser: (() => thenable) as never } });
      app.get('/hello', (_req, res) => { res.send('ok'); });
      await request(app).get('/hello').timeout(2_000).expect(200, 'ok');
      expect(errors.map((error) => error.code)).toEqual(['ORQ_IDENTITY_GET_USER_FAILED']);
      expect(errors[0]?.message).toContain('then boom');
    });
  });

  it('reads each property of the user once, so a getter cannot answer differently the second time', async () => {
    let reads = 0;
    const user = { get externalId(): string { reads += 1; return reads === 1 ? 'first-read' : 'later-read'; } };
    const { app, emulator } = await startApp({ middleware: { getUser: () => user } });
    app.get('/hello', (req, res) => { res.json({ identity: req.orqIdentity ?? null }); });
    const response = await request(app).get('/hello').expect(200);
    expect(response.body.identity?.externalId).toBe('first-read');
    expect(reads).toBe(1);
    expect(emulator.identities().map((identity) => identity.external_id)).toEqual(['first-read']);
  });
});

describe('a profile field that throws when read (issue 8 point 9)', () => {
  it('is dropped with an InvalidProfileFieldError, and the user is still registered', async () => {
    const { app, emulator, errors } = await startApp({
      middleware: {
        getUser: () => ({
          externalId: 'getter-profile',
          get email(): string { throw new Error('email boom'); },
          tags: new Proxy(['a'], { get() { throw new Error('tags boom'); } }),
          displayName: 'Ok',
        }),
      },
    });
    app.get('/hello', (req, res) => { res.json({ identity: req.orqIdentity ?? null }); });
    const response = await request(app).get('/hello').expect(200);
    expect(response.body.identity).toMatchObject({ externalId: 'getter-profile', displayName: 'Ok' });
    expect(emulator.calls.find((call) => call.operation === 'create')?.body).toEqual({ external_id: 'getter-profile', display_name: 'Ok' });
    expect(errors.every((error) => error instanceof InvalidProfileFieldError)).toBe(true);
    expect(errors.map((error) => (error as InvalidProfileFieldError).field).sort()).toEqual(['email', 'tags']);
    expect(errors.map((error) => error.message).join('\n')).toMatch(/The email of user "getter-profile" was left out: reading it threw \(email boom\)/);
  });

  it('renders a user object with a custom toString and no externalId sanely', async () => {
    const { app, errors } = await startApp({ middleware: { getUser: () => ({ id: 7, toString: () => 'User#7' }) as never } });
    app.get('/hello', (_req, res) => { res.send('ok'); });
    await request(app).get('/hello').expect(200);
    expect(errors[0]).toBeInstanceOf(InvalidUserError);
    expect(errors[0]?.message).toMatch(/^A user without an `externalId` was skipped: the external id must be a string or a safe integer, received undefined\./);
    expect(errors[0]?.message).not.toMatch(/undefined undefined|User#7/);
  });
});

describe('numeric external ids (issue 11 point 4)', () => {
  it.each([
    ['getUser returning 42', () => 42],
    ['getUser returning { externalId: 42 }', () => ({ externalId: 42 })],
    ['an async getUser returning 42', async () => 42],
  ])('%s resolves the user "42", then serves it from the cache', async (_what, getUser) => {
    const { app, emulator, errors } = await startApp({ middleware: { getUser: getUser as never } });
    app.get('/hello', (req, res) => { res.json({ identity: req.orqIdentity ?? null }); });
    const first = await request(app).get('/hello').expect(200);
    expect(first.body.identity?.externalId).toBe('42');
    await request(app).get('/hello').expect(200);
    expect(emulator.calls.map((call) => `${call.method} ${call.path}`)).toEqual(['GET /v2/identities/42', 'POST /v2/identities']);
    expect(errors).toEqual([]);
  });

  it.each([
    ['a fraction', 4.2],
    ['an unsafe integer', 2 ** 53],
    ['NaN', Number.NaN],
    ['a BigInt', 42n],
  ])('refuses %s', async (_what, id) => {
    const { app, emulator, errors } = await startApp({ middleware: { getUser: () => ({ externalId: id }) as never } });
    app.get('/hello', (_req, res) => { res.send('ok'); });
    await request(app).get('/hello').expect(200);
    expect(emulator.count()).toBe(0);
    expect(errors[0]).toBeInstanceOf(InvalidUserError);
    expect(errors[0]?.message).toMatch(/must be a string or a safe integer/);
  });
});

describe('external ids that are paths or URIs (issue 11 point 5)', () => {
  it.each(['tenant/42', 'https://issuer.example.com/users/7', 'a\\b', '/leading', 'trailing/'])(
    '%j is looked up as one percent-encoded segment and attached',
    async (externalId) => {
      const { app, emulator, errors } = await startApp({ middleware: { getUser: () => externalId } });
      app.get('/hello', (req, res) => { res.json({ identity: req.orqIdentity ?? null }); });
      const response = await request(app).get('/hello').expect(200);
      expect(response.body.identity?.externalId).toBe(externalId);
      expect(emulator.calls[0]?.path).toBe(`/v2/identities/${encodeURIComponent(externalId)}`);
      expect(errors).toEqual([]);
    },
  );
});

describe('ids that are not well-formed or carry controls (issue 8 points 4 and 9)', () => {
  it.each([
    ['a lone high surrogate', '\ud800', /lone UTF-16 surrogate/],
    ['a lone low surrogate inside', 'a\udc00b', /lone UTF-16 surrogate/],
    ['a C1 control (NEL)', 'a\u0085b', /control characters/],
    ['a C1 control (CSI)', '\u009b31m', /control characters/],
  ])('refuses %s before anything is sent', async (_what, externalId, problem) => {
    const { app, emulator, errors } = await startApp({ middleware: { getUser: () => externalId } });
    app.get('/hello', (_req, res) => { res.send('ok'); });
    await request(app).get('/hello').expect(200);
    expect(emulator.count()).toBe(0);
    expect(errors[0]).toBeInstanceOf(InvalidUserError);
    expect(errors[0]?.message).toMatch(problem);
    // The message quotes the id escaped, so it can neither break nor forge a log line.
    expect(errors[0]?.message).not.toMatch(/[\u0080-\u009f]/);
  });
});

describe('a getUser promise that never settles (issue 8 point 2: nothing getUser returns may stall the request)', () => {
  it('holds the request at most timeoutMs, then lets it go on without a user, and reports it', async () => {
    const { app, errors } = await startApp({ middleware: { timeoutMs: 100, getUser: () => new Promise<never>(() => undefined) } });
    app.get('/hello', (req, res) => { res.json({ identity: req.orqIdentity ?? null }); });
    const response = await request(app).get('/hello').timeout(3_000).expect(200);
    expect(response.body.identity).toBeNull();
    expect(errors.map((error) => error.code)).toEqual(['ORQ_IDENTITY_GET_USER_FAILED']);
    expect(errors[0]?.message).toMatch(/getUser's promise did not settle within timeoutMs \(100 ms\); the request goes on without an identity/);
  });

  it('a promise that settles after the deadline changes nothing and is not reported again', async () => {
    let settle: (value: string) => void = () => undefined;
    const { app, errors, emulator } = await startApp({ middleware: { timeoutMs: 50, getUser: () => new Promise<string>((resolve) => { settle = resolve; }) } });
    app.get('/hello', (_req, res) => { res.send('ok'); });
    await request(app).get('/hello').timeout(3_000).expect(200, 'ok');
    settle('late-user');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(errors).toHaveLength(1);
    expect(emulator.count()).toBe(0);
  });
});
