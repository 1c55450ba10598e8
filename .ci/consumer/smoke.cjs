// A CommonJS app using the packed package: one request registers an identity on the emulator.
const express = require('express');
const { orqIdentity } = require('express-orq-identity');
const { startOrqEmulator } = require('express-orq-identity/testing');

(async () => {
  const emulator = await startOrqEmulator();
  const middleware = orqIdentity({ apiKey: emulator.apiKey, serverURL: emulator.url, getUser: (req) => req.get('x-user') });
  const app = express();
  app.use(middleware);
  app.get('/', (req, res) => res.json(req.orqIdentity ?? null));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const response = await fetch(`http://127.0.0.1:${server.address().port}/`, { headers: { 'x-user': 'cjs-user' } });
  const identity = await response.json();
  server.close();
  await middleware.close();
  await emulator.close();
  if (identity?.externalId !== 'cjs-user' || !identity.id.startsWith('contact_')) throw new Error(`CJS consumer got ${JSON.stringify(identity)}`);
  console.log(`CJS consumer: ok (${identity.id})`);
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
