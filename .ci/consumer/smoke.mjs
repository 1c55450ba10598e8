// An ESM app using the packed package: one request registers an identity on the emulator.
import express from 'express';
import { orqIdentity, currentOrqIdentity } from 'express-orq-identity';
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
