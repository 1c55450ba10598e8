// skip(req): routes that never look anyone up (health checks, static files) cost no getUser, no call, no wait.
import type { Request } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { defaultGetUser, orqIdentity } from '../src/index.js';
import { expressVersions, startApp } from './helpers.js';

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
