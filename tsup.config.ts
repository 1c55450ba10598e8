import { defineConfig } from 'tsup';

// The entry points (the core with Express, the emulator, one per framework adapter), each shipped as ESM and CJS with matching .d.ts/.d.cts,
// because @orq-ai/node is CommonJS-only and apps on either side must load us.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'testing/index': 'src/testing/index.ts',
    'fastify/index': 'src/adapters/fastify.ts',
    'hono/index': 'src/adapters/hono.ts',
    'koa/index': 'src/adapters/koa.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  splitting: false,
});
