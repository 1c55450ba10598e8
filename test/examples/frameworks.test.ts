// The Fastify, Hono and Koa examples, each run as `npm run demo -- <name>` runs it, against the emulator.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

function demo(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { ORQ_API_KEY: _key, ORQ_SERVER_URL: _url, ...env } = process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/demo.ts', ...args], { cwd: root, env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('npm run demo -- <framework>', () => {
  it.each(['fastify', 'hono', 'koa'])('%s: registers each user once, serves the second request from the cache, refuses a forged token', async (name) => {
    const { code, stdout, stderr } = await demo(name);
    expect(code, `demo exited with ${String(code)}:\n${stdout}${stderr}`).toBe(0);
    expect(stdout).toMatch(/alice again +200 +contact_[0-9A-Z]{26} context user: demo-alice +orq calls: 0/);
    expect(stdout).toMatch(/forged token +401/);
    expect(stdout).toContain(`OK (${name}):`);
  }, 30_000);

  it('answers an unknown name with the list and exit code 2', async () => {
    const { code, stderr } = await demo('--', 'rails');
    expect(code).toBe(2);
    expect(stderr).toContain('choose from bearer-token, day-one, fastify, hono, koa');
  });
});
