// The fail-closed example: an orq outage answers JSON 503 with Retry-After; other errors keep their own handling.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../examples/fail-closed/app.js';
import { eventually, startEmulator } from '../helpers.js';

describe('examples/fail-closed', () => {
  it('answers a JSON 503 with Retry-After when orq does not answer in time, and serves the user once it does', async () => {
    const emulator = await startEmulator();
    const { app, identity } = createApp({ apiKey: emulator.apiKey, serverURL: emulator.url, timeoutMs: 100, onError: () => undefined });
    emulator.inject({ kind: 'latency', ms: 400, times: 1 });

    const refused = await request(app).post('/ai/summarise').set('x-user-id', 'patient').expect(503);
    expect(refused.headers['content-type']).toMatch(/^application\/json/);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.body).toEqual({
      error: 'identity_unavailable',
      message: 'Your account could not be confirmed with our AI provider. Try again shortly.',
      retryAfterSeconds: 1,
    });
    expect(refused.text).not.toContain('at ');

    // The lookup went on in the background and filled the cache.
    await eventually(() => identity.stats().cache.size === 1, 'the background lookup');
    await request(app).post('/ai/summarise').set('x-user-id', 'patient').expect(200, { summary: '…', for: 'patient' });
    await identity.close();
  });

  it("uses orq's Retry-After when it rate-limited us, then what is left of the pause", async () => {
    const emulator = await startEmulator();
    const { app, identity } = createApp({
      apiKey: emulator.apiKey, serverURL: emulator.url, retries: 0, onError: () => undefined,
    });
    emulator.inject({ kind: 'status', status: 429, headers: { 'Retry-After': '7' }, times: 1 });
    const limited = await request(app).post('/ai/summarise').set('x-user-id', 'first').expect(503);
    expect(limited.headers['retry-after']).toBe('7');

    // Calls are paused now: another user is refused at once, without a call, told what stats() says is left.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const paused = await request(app).post('/ai/summarise').set('x-user-id', 'late').expect(503);
    expect(paused.headers['retry-after']).toBe('6');
    expect(emulator.count()).toBe(1);
    await identity.close({ timeoutMs: 100 });
  });

  it('leaves anonymous requests and other errors alone', async () => {
    const emulator = await startEmulator();
    const { app, identity } = createApp({ apiKey: emulator.apiKey, serverURL: emulator.url });
    await request(app).post('/ai/summarise').expect(200, { summary: '…', for: null });
    const broken = await request(app).get('/broken').expect(500);
    expect(broken.headers['content-type']).toMatch(/^text\/html/);
    await identity.close();
  });
});
