// The API key never appears in any error, message, cause or log line (issue 8 point 3).
import { Orq } from '@orq-ai/node';
import request from 'supertest';
import { describe, expect, it, vi } from 'vitest';
import { createIdentityResolver, orqIdentity, type OrqIdentityError } from '../src/index.js';
import { redactorFor } from '../src/orq-client.js';
import { startApp, startEmulator } from './helpers.js';
import { expectNoKey as expectNoKeyIn } from './no-key.js';

const key = 'sk-live-5f2c9a7e1b3d4c6a8e0f';

function expectNoKey(errors: readonly unknown[], secret: string = key): void {
  expectNoKeyIn(errors, secret);
}

describe('an API key that cannot travel in a header', () => {
  it.each([
    ['a newline inside', 'sk-live-abc\ndef'],
    ['a trailing newline', 'sk-live-abcdef\n'],
    ['a NUL', 'sk-live-abc\u0000def'],
    ['a character above U+00FF', 'sk-live-abc\u2028def'],
  ])('is refused at start-up when it has %s, without printing it', (_what, badKey) => {
    let thrown: unknown;
    try {
      orqIdentity({ apiKey: badKey });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as Error).message).toMatch(/the orq API key from `apiKey` contains .* at position \d+ of \d+; the key is not shown/);
    expect((thrown as Error).message).not.toContain('sk-live-abc');
  });

  it('is refused from ORQ_API_KEY and from a client passed in, naming where it came from', () => {
    const saved = process.env.ORQ_API_KEY;
    process.env.ORQ_API_KEY = 'sk-live-abc\r\n';
    try {
      expect(() => createIdentityResolver()).toThrow(/the orq API key from ORQ_API_KEY contains a control character/);
    } finally {
      if (saved === undefined) delete process.env.ORQ_API_KEY;
      else process.env.ORQ_API_KEY = saved;
    }
    expect(() => orqIdentity({ client: new Orq({ apiKey: 'sk-live-abc\ndef' }) })).toThrow(/from the `client` you passed contains/);
  });

  it('given as a function the SDK calls late: the refused header is reported redacted, as not sent, never retried or blamed on orq', async () => {
    const emulator = await startEmulator();
    let attempts = 0;
    const client = new Orq({ serverURL: emulator.url, apiKey: async () => { attempts += 1; return `${key}\nX-Evil: 1`; } });
    const errors: OrqIdentityError[] = [];
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const resolver = createIdentityResolver({ client, retries: 2, circuitBreaker: { failureThreshold: 2 }, onError: (error) => errors.push(error) });
      for (let index = 0; index < 5; index++) await resolver.resolve(`late-key-${index}`).catch(() => undefined);
      expect(resolver.circuit).toBe('closed');
      expect(attempts).toBe(5);
      expect(emulator.count()).toBe(0);
      expect(errors.map((error) => (error.cause as { kind?: string } | undefined)?.kind ?? (error as { kind?: string }).kind)).toContain('not-sent');
      expect(errors[0]?.message).toMatch(/could not be sent \(TypeError: .*Bearer \[redacted\].*\); nothing left the process/);
      expectNoKey(errors, key);
      expectNoKey(errors, 'X-Evil');
    } finally {
      warn.mockRestore();
    }
  });
});

describe('an error answer that echoes the Authorization header', () => {
  it.each([500, 400, 401, 429, 302])('HTTP %i: no message, JSON, inspect or cause shows the key', async (status) => {
    const { whoami, emulator, errors } = await startApp({ emulator: { apiKey: key }, middleware: { retries: 1 } });
    emulator.inject({ kind: 'echo', status });
    await whoami('echoed').expect(200);
    expect(emulator.count()).toBeGreaterThan(0);
    expect(errors.length).toBeGreaterThan(0);
    expectNoKey(errors);
  });

  it('with failOpen: false, the error Express receives does not show it either', async () => {
    const { app, emulator } = await startApp({ emulator: { apiKey: key }, middleware: { failOpen: false, retries: 0 } });
    emulator.inject({ kind: 'echo', status: 502 });
    const seen: unknown[] = [];
    app.use((error: unknown, _req: unknown, res: { status(code: number): { end(): void } }, _next: unknown) => {
      seen.push(error);
      res.status(503).end();
    });
    await request(app).get('/whoami').set('x-user', 'strict-echo').expect(503);
    expect(seen).toHaveLength(1);
    expectNoKey(seen);
  });

  it('the default warn line does not show it', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const { whoami, emulator } = await startApp({ emulator: { apiKey: key }, middleware: { onError: undefined, retries: 0 } });
      emulator.inject({ kind: 'echo', status: 500 });
      await whoami('warned').expect(200);
      expect(warn).toHaveBeenCalled();
      for (const call of warn.mock.calls) expect(String(call[0])).not.toContain(key);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('redactorFor', () => {
  it.each([
    ['a bare bearer token', 'auth: Bearer abc.def-ghi', 'auth: Bearer [redacted]'],
    ['a quoted header with a newline', 'Headers.append: "Bearer abc\ndef" is an invalid header value.', 'Headers.append: "Bearer [redacted]" is an invalid header value.'],
    ['the key without Bearer', `{"api_key":"${key}"}`, '{"api_key":"[redacted]"}'],
  ])('removes %s', (_what, text, expected) => {
    expect(redactorFor(key)(text)).toBe(expected);
  });
});
