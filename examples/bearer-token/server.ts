// Runs the example app against the real orq API: `ORQ_API_KEY=… npx tsx examples/bearer-token/server.ts`.
import { randomBytes } from 'node:crypto';
import { closeServer, createApp, listen } from './app.js';
import { signToken } from './auth.js';

if (!process.env.ORQ_API_KEY) {
  console.error('Set ORQ_API_KEY (and optionally ORQ_SERVER_URL) to run against orq, or run `npm run demo` to try it offline.');
  process.exit(1);
}
const port = Number(process.env.PORT ?? 3000);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error(`PORT must be a port number, got ${process.env.PORT}`);
  process.exit(1);
}
// Without AUTH_SECRET a random secret still works, but only the token printed below can be used.
const secret = process.env.AUTH_SECRET ?? randomBytes(32).toString('base64url');

// apiKey and serverURL are left out so orqIdentity reads ORQ_API_KEY and ORQ_SERVER_URL itself.
const { app, middleware } = createApp({ authSecret: secret });
const { server, url } = await listen(app, port);

const token = signToken({ sub: 'demo-alice', name: 'Alice Liddell', email: 'alice@example.com' }, secret);
console.log(`Listening on ${url}, orq at ${process.env.ORQ_SERVER_URL || 'https://api.orq.ai'}

Try it as demo-alice (the token is valid for one hour):
  curl -H "Authorization: Bearer ${token}" ${url}/me

Tokens for other users, signed with the same secret:
  ${process.env.AUTH_SECRET ? '' : 'restart with AUTH_SECRET set (32+ characters), then\n  '}AUTH_SECRET=… npx tsx examples/bearer-token/sign-token.ts <sub> <name> <email>`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Stop taking requests first, then give background lookups a moment to land in orq.
  await closeServer(server);
  await middleware.close({ timeoutMs: 5_000 });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('shutdown failed:', error);
        process.exit(1);
      },
    );
  });
}
