// The bearer-token example: its auth layer, the app end to end against the emulator, and `npm run demo` as a whole.
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import express, { type Request, type Response } from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import type { OrqIdentityError } from '../../src/index.js';
import { startOrqEmulator, type OrqEmulator } from '../../src/testing/index.js';
import { createApp, type ExampleApp } from '../../examples/bearer-token/app.js';
import { bearerAuth, signToken, verifyToken, type AuthClaims } from '../../examples/bearer-token/auth.js';

const secret = randomBytes(32).toString('base64url');
const alice: AuthClaims = { sub: 'alice', name: 'Alice Liddell', email: 'alice@example.com' };
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Only the auth layer, answering with what it left on `req.auth`. */
function authOnlyApp(): express.Express {
  const app = express();
  app.use(bearerAuth(secret));
  app.get('/whoami', (req: Request, res: Response) => {
    res.json({ auth: req.auth ?? null });
  });
  return app;
}

describe('bearerAuth', () => {
  it('accepts a valid token and sets req.auth to its claims, without exp', async () => {
    const response = await request(authOnlyApp()).get('/whoami').set('authorization', `Bearer ${signToken(alice, secret)}`);
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ auth: alice });
  });

  it('lets a request without an Authorization header through as anonymous', async () => {
    const response = await request(authOnlyApp()).get('/whoami');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ auth: null });
  });

  it('rejects a token signed with another secret', async () => {
    const forged = signToken(alice, randomBytes(32).toString('base64url'));
    const response = await request(authOnlyApp()).get('/whoami').set('authorization', `Bearer ${forged}`);
    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toMatch(/^Bearer error="invalid_token"/);
    expect(response.body).toEqual({ error: 'invalid_token', message: 'bad signature' });
  });

  it('rejects a valid signature over a tampered payload', async () => {
    const [, signature] = signToken(alice, secret).split('.');
    const payload = Buffer.from(JSON.stringify({ ...alice, sub: 'admin', exp: nowSeconds() + 60 })).toString('base64url');
    const response = await request(authOnlyApp()).get('/whoami').set('authorization', `Bearer ${payload}.${signature ?? ''}`);
    expect(response.status).toBe(401);
    expect(response.body.message).toBe('bad signature');
  });

  it('rejects an expired token', async () => {
    const expired = signToken({ ...alice, exp: nowSeconds() - 1 }, secret);
    const response = await request(authOnlyApp()).get('/whoami').set('authorization', `Bearer ${expired}`);
    expect(response.status).toBe(401);
    expect(response.body.message).toBe('token expired');
  });

  it.each([
    ['another scheme', 'Basic YWxpY2U6cGFzcw=='],
    ['a bare token', signToken(alice, secret)],
    ['a token of one part', 'Bearer abc'],
    ['a token of three parts', 'Bearer a.b.c'],
  ])('rejects %s', async (_name, header) => {
    const response = await request(authOnlyApp()).get('/whoami').set('authorization', header);
    expect(response.status).toBe(401);
    expect(response.body.error).toBe('invalid_token');
  });

  it('rejects a correctly signed payload that lacks a claim', async () => {
    // Signed by hand, because signToken always writes every claim.
    const payload = Buffer.from(JSON.stringify({ sub: 'alice', exp: nowSeconds() + 60 })).toString('base64url');
    const signature = createHmac('sha256', secret).update(payload).digest('base64url');
    expect(verifyToken(`${payload}.${signature}`, secret)).toEqual({ ok: false, reason: 'malformed payload' });
    const response = await request(authOnlyApp()).get('/whoami').set('authorization', `Bearer ${payload}.${signature}`);
    expect(response.status).toBe(401);
  });

  it('refuses a secret too short to be safe', () => {
    expect(() => bearerAuth('short')).toThrow(/at least 32 characters/);
    expect(() => signToken(alice, 'short')).toThrow(/at least 32 characters/);
  });
});

describe('the example app against the emulator', () => {
  async function start(): Promise<ExampleApp & { emulator: OrqEmulator; errors: OrqIdentityError[] }> {
    const emulator = await startOrqEmulator();
    cleanups.push(() => emulator.close());
    const errors: OrqIdentityError[] = [];
    const example = createApp({
      authSecret: secret,
      apiKey: emulator.apiKey,
      serverURL: emulator.url,
      onError: (error) => errors.push(error),
    });
    cleanups.push(() => example.middleware.close({ timeoutMs: 1_000 }));
    return { ...example, emulator, errors };
  }

  it("registers the token's user with its name and email, then serves it from the cache", async () => {
    const { app, emulator, errors } = await start();
    const token = signToken(alice, secret);

    const first = await request(app).get('/me').set('authorization', `Bearer ${token}`);
    expect(first.status).toBe(200);
    expect(first.body.identity).toMatchObject({
      id: expect.stringMatching(/^contact_/),
      externalId: 'alice',
      displayName: 'Alice Liddell',
      email: 'alice@example.com',
    });
    expect(emulator.identities()).toEqual([
      expect.objectContaining({ _id: first.body.identity.id, external_id: 'alice', display_name: 'Alice Liddell', email: 'alice@example.com' }),
    ]);
    expect(emulator.calls.map((call) => `${call.method} ${call.path} ${String(call.status)}`)).toEqual([
      'GET /v2/identities/alice 404',
      'POST /v2/identities 201',
    ]);

    const second = await request(app).get('/me').set('authorization', `Bearer ${token}`);
    expect(second.status).toBe(200);
    expect(second.body.identity).toEqual(first.body.identity);
    expect(emulator.count()).toBe(2);
    expect(errors).toEqual([]);
  });

  it('attaches no identity and calls orq for neither anonymous nor rejected requests', async () => {
    const { app, emulator } = await start();

    const anonymous = await request(app).get('/me');
    expect(anonymous.status).toBe(200);
    expect(anonymous.body).toEqual({ identity: null });

    const forged = await request(app).get('/me').set('authorization', `Bearer ${signToken(alice, randomBytes(32).toString('base64url'))}`);
    expect(forged.status).toBe(401);
    expect(forged.body).not.toHaveProperty('identity');
    expect(emulator.count()).toBe(0);
  });

  it('answers /health', async () => {
    const { app } = await start();
    const response = await request(app).get('/health');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ ok: true });
  });
});

describe('npm run demo', () => {
  it('runs to completion against the emulator when ORQ_API_KEY is unset', async () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const { ORQ_API_KEY: _key, ORQ_SERVER_URL: _url, ...env } = process.env;
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/bearer-token/demo.ts'], { cwd: root, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));

    expect(code, `demo exited with ${String(code)}:\n${stdout}${stderr}`).toBe(0);
    expect(stdout).toMatch(/contact_[0-9A-Z]{26}/);
    expect(stdout).toContain('OK:');
  });
});
