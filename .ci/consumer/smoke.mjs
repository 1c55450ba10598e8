// An ESM app using the packed package: one request registers an identity on the emulator.
import { createRequire } from 'node:module';
import express from 'express';
import { orqIdentity, currentOrqIdentity, runWithOrqIdentity } from 'express-orq-identity';
import { startOrqEmulator } from 'express-orq-identity/testing';

const emulator = await startOrqEmulator();
const middleware = orqIdentity({ apiKey: emulator.apiKey, serverURL: emulator.url, getUser: (req) => req.get('x-user') });
const app = express();
app.use(middleware);
app.get('/', async (req, res) => {
  await new Promise((resolve) => setTimeout(resolve, 1));
  res.json({ attached: req.orqIdentity ?? null, current: currentOrqIdentity() ?? null });
});
const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const response = await fetch(`http://127.0.0.1:${server.address().port}/`, { headers: { 'x-user': 'esm-user' } });
const { attached, current } = await response.json();
server.close();
await middleware.close();
await emulator.close();
if (attached?.externalId !== 'esm-user' || current?.id !== attached.id) throw new Error(`ESM consumer got ${JSON.stringify({ attached, current })}`);
console.log(`ESM consumer: ok (${attached.id})`);

// An app that ends up loading both builds must still share one request context between them.
const cjs = createRequire(import.meta.url)('express-orq-identity');
const seen = runWithOrqIdentity(attached, () => cjs.currentOrqIdentity());
if (seen?.id !== attached.id) throw new Error('the CJS build does not see the context set through the ESM build');
console.log('ESM + CJS in one process: one context');
