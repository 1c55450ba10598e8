// The suite as `npm run mutation` runs it. Instrumented code runs several times slower, and the machine is shared:
// tests that bound wall-clock time fail the initial run for that reason alone, so they are left out here
// (npm test still runs them). Tests with tight deadlines (a 300 ms timeoutMs) may miss them under the same
// slowdown: they get two more tries, so only a failure that repeats, as a mutant's does, counts.
// Listed in test/MUTATION.md.
import { configDefaults, defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

export default mergeConfig(
  base,
  defineConfig({
    test: {
      exclude: [...configDefaults.exclude, 'test/overload.test.ts'],
      retry: 2,
    },
  }),
);
