// The production example: /healthz from stats(), no lookup for probes, and SIGTERM letting requests in flight finish.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../examples/production/app.js';
import { startEmulator } from '../helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('examples/production', () => {
  it('answers /healthz from stats() without looking anyone up, and says degraded while calls are paused', async () => {
    const emulator = await startEmulator();
    const { app, identity } = createApp({
      apiKey: emulator.apiKey, serverURL: emulator.url, retries: 0, circuitBreaker: { failureThreshold: 1 }, onError: () => undefined,
    });

    await request(app).get('/me').set('x-user-id', 'ada').expect(200);
    const healthy = await request(app).get('/healthz').set('x-user-id', 'probe').expect(200);
    expect(healthy.body).toEqual({
      status: 'ok',
      orqIdentity: {
        cache: { size: 1, max: 10_000, hits: 0, misses: 1 },
        circuit: { state: 'closed', retryInMs: 0 },
        queue: { inFlight: 0, queued: 0, maxConcurrency: 16, maxQueue: 1_000 },
        lookupsInFlight: 0,
        failedLookups: 0,
      },
    });
    expect(emulator.count()).toBe(2);

    emulator.inject({ kind: 'status', status: 503, times: 1 });
    await request(app).get('/me').set('x-user-id', 'grace').expect(200);
    const degraded = await request(app).get('/healthz').expect(200);
    expect(degraded.body).toMatchObject({ status: 'degraded', orqIdentity: { circuit: { state: 'open' }, failedLookups: 1 } });
    await identity.close();
  });

  it('on SIGTERM finishes the request in flight, closes the middleware and exits 0', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0' };
    delete env.ORQ_API_KEY;
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/production/server.ts'], { cwd: root, env });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const match = /listening on (http:\S+)/.exec(stdout);
        if (match?.[1] !== undefined) resolve(match[1]);
      });
      void exited.then(() => reject(new Error(`server exited early:\n${stdout}${stderr}`)));
    });

    const inFlight = fetch(`${url}/slow?ms=400`, { headers: { 'x-user-id': 'ada' } });
    // Terminate once the server has the request, as a rolling deploy does mid-traffic.
    const started = Date.now();
    while (!stdout.includes('GET /slow') && Date.now() - started < 10_000) await new Promise((resolve) => setTimeout(resolve, 10));
    child.kill('SIGTERM');
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ identity: 'ada' });
    expect(await exited, stdout + stderr).toBe(0);
    expect(stdout).toContain('SIGTERM: closing');
    expect(stdout).toContain('closed: 0 background task(s) abandoned');
    // Closed means closed: no new connection is accepted.
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  }, 30_000);
});
