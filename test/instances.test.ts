// Several instances for one orq: each has its own cache and limits, so the second live one gets a warning, once.
import express from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createIdentityResolver, orqIdentity } from '../src/index.js';
import { orqClientFor, startEmulator } from './helpers.js';

let codes: Array<string | undefined> = [];
let messages: string[] = [];
beforeEach(() => {
  codes = [];
  messages = [];
  vi.spyOn(process, 'emitWarning').mockImplementation(((message: string, options?: { code?: string }) => {
    codes.push(options?.code);
    messages.push(message);
  }) as typeof process.emitWarning);
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('several instances', () => {
  it('warns once when a second instance for the same key and server is created while the first runs', async () => {
    const emulator = await startEmulator();
    const options = { apiKey: emulator.apiKey, serverURL: emulator.url, getUser: (req: express.Request) => req.header('x-user') };
    const instances = [orqIdentity(options), orqIdentity(options), orqIdentity(options)];
    expect(codes).toEqual(['ORQ_IDENTITY_SEVERAL_INSTANCES']);
    expect(messages[0]).toMatch(/^orqIdentity: another instance for the same orq configuration is already running\. Each instance has its own cache/);
    expect(messages[0]).toContain('Create the middleware once at start-up and reuse it');
    expect(messages[0]).not.toContain(emulator.apiKey);

    // What the warning is about: one new user, registered inline per route, costs a lookup per instance.
    const app = express();
    instances.forEach((instance, index) => app.get(`/r${index}`, instance, (_req, res) => res.end()));
    for (let index = 0; index < instances.length; index++) await request(app).get(`/r${index}`).set('x-user', 'newcomer').expect(200);
    expect(emulator.count('retrieve')).toBe(3);
    await Promise.all(instances.map((instance) => instance.close()));
  });

  it('says nothing when the first instance was closed before its replacement was made', async () => {
    const emulator = await startEmulator();
    const options = { apiKey: emulator.apiKey, serverURL: emulator.url };
    await orqIdentity(options).close();
    const replacement = orqIdentity(options);
    expect(codes).toEqual([]);
    await replacement.close();
  });

  it('says nothing for instances that talk to different orq servers or with different clients', async () => {
    const [first, second] = await Promise.all([startEmulator(), startEmulator()]);
    const instances = [
      orqIdentity({ apiKey: first.apiKey, serverURL: first.url }),
      orqIdentity({ apiKey: second.apiKey, serverURL: second.url }),
      orqIdentity({ client: orqClientFor(first) }),
      orqIdentity({ client: orqClientFor(first) }),
    ];
    expect(codes).toEqual([]);
    await Promise.all(instances.map((instance) => instance.close()));
  });

  it('counts a resolver beside the middleware, and one client object handed to two instances', async () => {
    const emulator = await startEmulator();
    const client = orqClientFor(emulator);
    const middleware = orqIdentity({ client });
    const resolver = createIdentityResolver({ client });
    expect(codes).toEqual(['ORQ_IDENTITY_SEVERAL_INSTANCES']);
    expect(messages[0]).toMatch(/^createIdentityResolver: .*for work outside requests use `identity\.resolver`/);
    await Promise.all([middleware.close(), resolver.close()]);
  });
});
