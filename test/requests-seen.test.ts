// Which requests the middleware sees: skip(req) leaves some alone entirely, and the silent mistake of orqIdentity
// before the auth layer (requests that look signed in but never yield a user) gets one warning with the fix.
import express5 from 'express';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { defaultGetUser, orqIdentity, type OrqIdentityMiddleware } from '../src/index.js';
import { anonymousStreakLimit } from '../src/misplaced-middleware.js';
import { captureWarnings, expressVersions, startApp, startEmulator } from './helpers.js';

/** A bearer-token auth layer standing in for passport/express-jwt: `Authorization: Bearer <id>` → req.user. */
const auth: RequestHandler = (req: Request, _res: Response, next: NextFunction) => {
  const token = /^Bearer (.+)$/.exec(req.header('authorization') ?? '')?.[1];
  if (token !== undefined) (req as { user?: unknown }).user = { id: token };
  next();
};

const warnings = captureWarnings();

async function middlewareOnEmulator(): Promise<{ identity: OrqIdentityMiddleware; count: () => number }> {
  const emulator = await startEmulator();
  const identity = orqIdentity({ apiKey: emulator.apiKey, serverURL: emulator.url, onError: () => undefined });
  return { identity, count: () => emulator.count() };
}

function sendMany(app: Express, times: number, headers: Record<string, string>): Promise<unknown> {
  return Array.from({ length: times }).reduce<Promise<unknown>>(
    (previous, _, index) => previous.then(() => request(app).get('/x').set(headers).set('x-n', String(index)).expect(200)),
    Promise.resolve(),
  );
}

describe.each(expressVersions)('misplaced middleware under %s', (_name, express) => {
  it('warns once, with the fix, when orqIdentity runs before the auth layer', async () => {
    const { identity, count } = await middlewareOnEmulator();
    const app = express();
    app.use(identity);
    app.use(auth);
    app.get('/x', (req, res) => res.json({ identity: req.orqIdentity ?? null }));

    await sendMany(app, anonymousStreakLimit - 1, { authorization: 'Bearer alice' });
    expect(warnings).toEqual([]);
    await sendMany(app, anonymousStreakLimit * 2, { authorization: 'Bearer alice' });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.code).toBe('ORQ_IDENTITY_NO_USER_FOUND');
    expect(warnings[0]?.message).toBe(
      `orqIdentity: ${anonymousStreakLimit} requests in a row carried an Authorization header or a session cookie, ` +
        'but getUser found no user in any of them, so no identity was attached and orq was never called. ' +
        'orqIdentity probably runs before your auth middleware: register it after (`app.use(auth); app.use(identity)`), ' +
        "or, with per-route authentication such as passport.authenticate(), after it on each route with one shared instance (`app.get('/x', auth, identity, handler)`). " +
        'If your auth layer leaves the user somewhere else on the request, pass `getUser`.',
    );
    expect(count()).toBe(0);
    await identity.close();
  });

  it('warns on session cookies too (passport sessions, cookie-session, Clerk)', async () => {
    const { identity } = await middlewareOnEmulator();
    const app = express();
    app.use(identity);
    app.get('/x', (_req, res) => res.json({}));
    await sendMany(app, anonymousStreakLimit, { cookie: 'theme=dark; connect.sid=s%3Aabc.def' });
    expect(warnings.map((warning) => warning.code)).toEqual(['ORQ_IDENTITY_NO_USER_FOUND']);
    await identity.close();
  });

  it('stays quiet for a working setup, also after anonymous and signed-in requests mixed', async () => {
    const { identity } = await middlewareOnEmulator();
    const app = express();
    app.use(auth);
    app.use(identity);
    app.get('/x', (req, res) => res.json({ identity: req.orqIdentity?.externalId ?? null }));
    await request(app).get('/x').set('authorization', 'Bearer bob').expect(200, { identity: 'bob' });
    // A service token the app does not map to a user, after a user was seen: not a setup mistake.
    await sendMany(app, anonymousStreakLimit * 2, { authorization: 'Basic c2VydmljZQ==' });
    expect(warnings).toEqual([]);
    await identity.close();
  });

  it('stays quiet for public traffic without credentials', async () => {
    const { identity } = await middlewareOnEmulator();
    const app = express();
    app.use(identity);
    app.get('/x', (_req, res) => res.json({}));
    await sendMany(app, anonymousStreakLimit * 2, { cookie: 'theme=dark; lang=en; XSRF-TOKEN=abc; _csrf=def' });
    expect(warnings).toEqual([]);
    await identity.close();
  });

  it('stays quiet without any header, and for cookies whose values (not names) look like sessions', async () => {
    const { identity } = await middlewareOnEmulator();
    const app = express();
    app.use(identity);
    app.get('/x', (_req, res) => res.json({}));
    await sendMany(app, anonymousStreakLimit, {});
    await sendMany(app, anonymousStreakLimit, { cookie: 'theme=session-token' });
    expect(warnings).toEqual([]);
    await identity.close();
  });

  it('attaches identities with route-level auth and one shared instance, and stays quiet', async () => {
    const { identity, count } = await middlewareOnEmulator();
    const app = express();
    app.get('/public', identity, (_req, res) => res.json({}));
    app.get('/a', auth, identity, (req, res) => res.json({ identity: req.orqIdentity?.externalId ?? null }));
    app.get('/b', auth, identity, (req, res) => res.json({ identity: req.orqIdentity?.externalId ?? null }));
    await request(app).get('/a').set('authorization', 'Bearer carol').expect(200, { identity: 'carol' });
    await request(app).get('/b').set('authorization', 'Bearer carol').expect(200, { identity: 'carol' });
    // One instance, one cache: the second route costs no call.
    expect(count()).toBe(2);
    expect(warnings).toEqual([]);
    await identity.close();
  });
});

it('is not fooled by skip: skipped requests are not counted', async () => {
  const emulator = await startEmulator();
  const identity = orqIdentity({ apiKey: emulator.apiKey, serverURL: emulator.url, skip: (req) => req.path === '/x' });
  const app = express5();
  app.use(identity);
  app.get('/x', (_req, res) => res.json({}));
  await sendMany(app, anonymousStreakLimit * 2, { authorization: 'Bearer x' });
  expect(warnings).toEqual([]);
  await identity.close();
});

describe.each(expressVersions)('skip under %s', (_name, express) => {
  it('passes skipped requests straight on, without reading the user or calling orq', async () => {
    const asked: string[] = [];
    const { app, emulator, whoami, errors } = await startApp({
      express,
      middleware: {
        skip: (req: Request) => req.path === '/healthz',
        getUser: (req: Request) => {
          asked.push(req.path);
          return defaultGetUser(req);
        },
      },
    });
    app.get('/healthz', (req, res) => {
      res.json({ identity: req.orqIdentity ?? null });
    });

    const skipped = await request(app).get('/healthz').set('x-user', 'monitor').expect(200);
    expect(skipped.body).toEqual({ identity: null });
    expect(asked).toEqual([]);
    expect(emulator.count()).toBe(0);

    const served = await whoami('monitor').expect(200);
    expect(served.body.identity).toMatchObject({ externalId: 'monitor' });
    expect(asked).toEqual(['/whoami']);
    expect(errors).toEqual([]);
  });
});

it('refuses a skip that is not a function, at start-up', () => {
  expect(() => orqIdentity({ apiKey: 'k', skip: '/healthz' as never })).toThrow(
    /orqIdentity: invalid option `skip`, received `'\/healthz'`; pass a function/,
  );
});
