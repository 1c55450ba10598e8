// The public types under the strictest settings a new TypeScript app starts with (`tsc --init`):
// .ci/consumer/strict-esm.ts, the README's code with optional fields passed through as `undefined`, must compile.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

it('type-checks a consumer under exactOptionalPropertyTypes, noUncheckedIndexedAccess and verbatimModuleSyntax', () => {
  let output = '';
  try {
    execFileSync(process.execPath, [tsc, '-p', 'test/types/tsconfig.json', '--pretty', 'false'], { cwd: root, encoding: 'utf8' });
  } catch (error) {
    output = String((error as { stdout?: string }).stdout ?? error);
  }
  expect(output).toBe('');
}, 60_000);
