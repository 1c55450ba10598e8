// Importing the package and making the middleware without a `client` must not load @orq-ai/node (issue 12):
// each case runs in a fresh Node process, so nothing this test process already loaded can hide or fake a load.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const probe = 'test/fixtures/import-probe.mjs';

interface ProbeReport {
  sdkModuleCount: number;
  sdkModules: string[];
}

async function probeImport(how: 'import' | 'require', ...flags: string[]): Promise<ProbeReport> {
  const { stdout } = await run(process.execPath, ['--expose-gc', '--import', 'tsx', probe, './src/index.ts', how, ...flags], { timeout: 15_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as ProbeReport;
}

describe('the cost of importing the package', () => {
  it.each(['import', 'require'] as const)('%s and orqIdentity({ apiKey }) load no module of @orq-ai/node', async (how) => {
    // The probe also fails the import outright if any ESM module resolves '@orq-ai/node'.
    const report = await probeImport(how, '--create');
    expect(report).toMatchObject({ sdkModuleCount: 0, sdkModules: [] });
  });

  it('the probe sees the SDK when it is loaded (the control)', async () => {
    const report = await probeImport('import', '--then-load-sdk');
    expect(report.sdkModuleCount).toBeGreaterThan(100);
    expect(report.sdkModules[0]).toMatch(/@orq-ai[\\/]node[\\/]/);
  });
});
