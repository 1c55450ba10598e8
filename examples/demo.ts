// `npm run demo [-- <example>]`: without a name the bearer-token (Express) demo, as before; fastify, hono or koa run
// that framework's example through the same checks; day-one rehearses a registration wave against a rate limit.
import { runFrameworkDemo, type FrameworkExample } from './framework-demo.js';

const frameworks: Record<string, () => Promise<FrameworkExample>> = {
  fastify: () => import('./fastify/app.js'),
  hono: () => import('./hono/app.js'),
  koa: () => import('./koa/app.js'),
};

const name = process.argv.slice(2).find((arg) => arg !== '--');
if (name === undefined || name === 'bearer-token' || name === 'express') {
  await import('./bearer-token/demo.js');
} else if (name === 'day-one') {
  await (await import('./day-one/rehearse.js')).main();
} else {
  const load = frameworks[name];
  if (load === undefined) {
    console.error(`unknown demo ${name}; choose from bearer-token, day-one, ${Object.keys(frameworks).join(', ')}`);
    process.exitCode = 2;
  } else {
    await runFrameworkDemo(name, await load());
  }
}
