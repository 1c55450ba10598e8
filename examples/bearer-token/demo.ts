// `npm run demo`: runs the example app against the orq emulator (or the real API with ORQ_API_KEY) and checks what happens.
import { randomBytes } from 'node:crypto';
import type { OrqIdentityError } from '../../src/index.js';
import { startOrqEmulator, type OrqEmulator } from '../../src/testing/index.js';
import { closeServer, createApp, listen } from './app.js';
import { signToken, type AuthClaims } from './auth.js';

// CI runs this as a check: a hang must fail it rather than stall the job. unref() lets a clean run exit early.
setTimeout(() => {
  console.error('demo: timed out after 30 s');
  process.exit(1);
}, 30_000).unref();

const alice: AuthClaims = { sub: 'demo-alice', name: 'Alice Liddell', email: 'alice@example.com' };
const bob: AuthClaims = { sub: 'demo-bob', name: 'Bob Okafor', email: 'bob@example.com' };

interface Step {
  label: string;
  token?: string;
  status: number;
  /** The user whose identity must be attached; null for none. */
  user: AuthClaims | null;
  /** Must be answered from the cache: the same identity as before and no call to orq. */
  cached?: boolean;
}

interface SeenIdentity {
  id: string;
  externalId: string;
}

function identityIn(body: unknown): SeenIdentity | null {
  if (typeof body !== 'object' || body === null || !('identity' in body)) return null;
  const { identity } = body;
  if (typeof identity !== 'object' || identity === null) return null;
  const { id, externalId } = identity as Record<string, unknown>;
  return typeof id === 'string' && typeof externalId === 'string' ? { id, externalId } : null;
}

function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    `  ${cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join('   ')}`;
  return [line(header), ...rows.map(line)].join('\n');
}

async function run(emulator: OrqEmulator | undefined, problems: string[], cleanups: Array<() => Promise<unknown>>): Promise<void> {
  const secret = randomBytes(32).toString('base64url');
  const reported: OrqIdentityError[] = [];
  const { app, middleware } = createApp({
    authSecret: secret,
    ...(emulator === undefined ? {} : { apiKey: emulator.apiKey, serverURL: emulator.url }),
    onError: (error) => reported.push(error),
  });
  cleanups.push(() => middleware.close({ timeoutMs: 2_000 }));
  const { server, url } = await listen(app, 0);
  // Registered after the middleware's, so it runs before it: stop taking requests, then drain lookups.
  cleanups.push(() => closeServer(server));

  console.log(`orq: ${emulator === undefined ? 'real API (ORQ_API_KEY)' : `emulator at ${emulator.url} (set ORQ_API_KEY to use the real API)`}`);
  console.log(`app: ${url}\n`);

  const aliceToken = signToken(alice, secret);
  const steps: Step[] = [
    { label: 'alice', token: aliceToken, status: 200, user: alice },
    { label: 'bob', token: signToken(bob, secret), status: 200, user: bob },
    { label: 'alice again', token: aliceToken, status: 200, user: alice, cached: true },
    { label: 'anonymous', status: 200, user: null },
    { label: 'forged token', token: signToken(alice, randomBytes(32).toString('base64url')), status: 401, user: null },
    { label: 'expired token', token: signToken({ ...alice, exp: Math.floor(Date.now() / 1000) - 60 }, secret), status: 401, user: null },
  ];

  const firstSeen = new Map<string, string>();
  const rows: string[][] = [];
  for (const step of steps) {
    const callsBefore = emulator?.count() ?? 0;
    const response = await fetch(`${url}/me`, {
      headers: step.token === undefined ? {} : { authorization: `Bearer ${step.token}` },
    });
    const identity = identityIn(await response.json());
    const orqCalls = (emulator?.count() ?? 0) - callsBefore;
    rows.push([step.label, String(response.status), identity?.id ?? '-', ...(emulator === undefined ? [] : [String(orqCalls)])]);

    const fail = (what: string): void => {
      problems.push(`${step.label}: ${what}`);
    };
    if (response.status !== step.status) fail(`expected status ${step.status}, got ${response.status}`);
    if (step.user === null) {
      if (identity !== null) fail(`expected no identity, got ${identity.id}`);
    } else if (identity === null) {
      fail('no identity attached');
    } else {
      if (identity.externalId !== step.user.sub) fail(`identity is ${identity.externalId}, expected ${step.user.sub}`);
      const earlier = firstSeen.get(step.user.sub);
      if (step.cached && earlier !== identity.id) fail(`expected the cached identity ${earlier ?? '(none)'}, got ${identity.id}`);
      firstSeen.set(step.user.sub, identity.id);
    }
    // Only a first sighting may cost a call to orq; the cache and the auth layer answer everything else.
    if (emulator !== undefined && (step.user === null || step.cached) && orqCalls !== 0) fail(`expected no orq call, saw ${orqCalls}`);
  }

  console.log('Requests to GET /me');
  console.log(table(['as', 'status', 'identity', ...(emulator === undefined ? [] : ['orq calls'])], rows));

  if (emulator !== undefined) {
    const identities = emulator.identities();
    console.log('\nIdentities registered in orq');
    console.log(table(['external_id', 'display_name', 'email', 'id'], identities.map((identity) => [
      identity.external_id, identity.display_name ?? '-', identity.email ?? '-', identity._id,
    ])));
    for (const user of [alice, bob]) {
      const found = identities.find((identity) => identity.external_id === user.sub);
      if (found?.display_name !== user.name || found.email !== user.email) {
        problems.push(`orq: ${user.sub} not registered with the token's name and email`);
      }
    }
    if (identities.length !== 2) problems.push(`orq: expected 2 identities, found ${identities.length}`);

    console.log('\nCalls orq received');
    console.log(table(['method', 'path', 'status'], emulator.calls.map((call) => [call.method, call.path, String(call.status)])));
  } else {
    console.log(`\nIdentities ${alice.sub} and ${bob.sub} are now in your orq workspace.`);
  }
  for (const error of reported) problems.push(`onError: ${error.code}: ${error.message}`);
}

const problems: string[] = [];
// Run in reverse order of registration, so each thing is closed before what it depends on.
const cleanups: Array<() => Promise<unknown>> = [];
try {
  const emulator = process.env.ORQ_API_KEY ? undefined : await startOrqEmulator();
  if (emulator !== undefined) cleanups.push(() => emulator.close());
  await run(emulator, problems, cleanups);
} catch (error) {
  problems.push(`unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  for (const cleanup of cleanups.reverse()) {
    await cleanup().catch((error: unknown) => problems.push(`cleanup failed: ${String(error)}`));
  }
}

if (problems.length === 0) {
  console.log("\nOK: each user was registered once; alice's second request was served from the cache.");
} else {
  console.error(`\nFAILED:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  process.exitCode = 1;
}
