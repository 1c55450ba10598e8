// Runs the production example and shuts it down cleanly on SIGTERM (what Kubernetes, systemd and Docker send):
// `npx tsx examples/production/server.ts`. Without ORQ_API_KEY it runs on the in-memory emulator.
import type { AddressInfo } from 'node:net';
import { startOrqEmulator } from '../../src/testing/index.js';
import { createApp } from './app.js';

const emulator = process.env.ORQ_API_KEY ? undefined : await startOrqEmulator();
const { app, identity } = createApp(emulator === undefined ? {} : { apiKey: emulator.apiKey, serverURL: emulator.url });
const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
// A one-line access log (your logger would do this).
server.on('request', (req: { method?: string; url?: string }) => console.log(`${req.method} ${req.url}`));
console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: closing`);
  // 1. Stop accepting connections; requests in flight finish (their identity is already attached or on its way).
  const closed = new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  // Idle keep-alive sockets would hold close() open until they time out.
  server.closeIdleConnections();
  await closed;
  // 2. Then let background lookups and profile syncs land in orq, for at most 5 s: no new lookup starts.
  const { pending } = await identity.close({ timeoutMs: 5_000 });
  console.log(`closed: ${pending} background task(s) abandoned`);
  await emulator?.close();
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    shutdown(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('shutdown failed:', error);
        process.exit(1);
      },
    );
  });
}
