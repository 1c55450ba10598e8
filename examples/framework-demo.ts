// `npm run demo -- <fastify|hono|koa>`: runs that framework's example app against the orq emulator (or the real API with
// ORQ_API_KEY) and checks what the bearer-token demo checks for Express: one registration per user, the cache after.
import { randomBytes } from 'node:crypto';
import type { OrqIdentityError } from '../src/index.js';
import { startOrqEmulator, type OrqEmulator } from '../src/testing/index.js';
import type { AuthClaims } from './bearer-token/auth.js';

export interface ExampleOptions {
  /** The secret tokens are signed with (at least 32 characters). */
  authSecret: string;
  apiKey?: string;
  serverURL?: string;
  onError?: (error: OrqIdentityError) => void;
}

export interface RunningExample {
  url: string;
  /** Stops the server, then lets background lookups finish. */
  close(): Promise<void>;
}

export interface FrameworkExample {
  startApp(options: ExampleOptions, port?: number): Promise<RunningExample>;
  signToken(claims: AuthClaims, secret: string): Promise<string>;
}

const alice: AuthClaims = { sub: 'demo-alice', name: 'Alice Liddell', email: 'alice@example.com' };
const bob: AuthClaims = { sub: 'demo-bob', name: 'Bob Okafor', email: 'bob@example.com' };

interface Step {
  label: string;
  token?: string;
  status: number;
  user: AuthClaims | null;
  cached?: boolean;
}

async function check(example: FrameworkExample, emulator: OrqEmulator | undefined, problems: string[]): Promise<void> {
  const secret = randomBytes(32).toString('base64url');
  const reported: OrqIdentityError[] = [];
  const app = await example.startApp({
    authSecret: secret,
    ...(emulator === undefined ? {} : { apiKey: emulator.apiKey, serverURL: emulator.url }),
    onError: (error) => reported.push(error),
  });
  try {
    console.log(`orq: ${emulator === undefined ? 'real API (ORQ_API_KEY)' : `emulator at ${emulator.url}`}\napp: ${app.url}\n`);
    const aliceToken = await example.signToken(alice, secret);
    const steps: Step[] = [
      { label: 'alice', token: aliceToken, status: 200, user: alice },
      { label: 'bob', token: await example.signToken(bob, secret), status: 200, user: bob },
      { label: 'alice again', token: aliceToken, status: 200, user: alice, cached: true },
      { label: 'anonymous', status: 200, user: null },
      { label: 'forged token', token: await example.signToken(alice, randomBytes(32).toString('base64url')), status: 401, user: null },
    ];
    const firstSeen = new Map<string, string>();
    for (const step of steps) {
      const callsBefore = emulator?.count() ?? 0;
      const response = await fetch(`${app.url}/me`, { headers: step.token === undefined ? {} : { authorization: `Bearer ${step.token}` } });
      const body = (await response.json().catch(() => ({}))) as { identity?: { id: string; externalId: string } | null; user?: string | null };
      const orqCalls = (emulator?.count() ?? 0) - callsBefore;
      const identity = body.identity ?? null;
      console.log(`  ${step.label.padEnd(13)} ${response.status}   ${(identity?.id ?? '-').padEnd(30)} context user: ${body.user ?? '-'}   orq calls: ${orqCalls}`);
      const fail = (what: string): void => {
        problems.push(`${step.label}: ${what}`);
      };
      if (response.status !== step.status) fail(`expected status ${step.status}, got ${response.status}`);
      if (step.user === null) {
        if (identity !== null) fail(`expected no identity, got ${identity.id}`);
      } else if (identity === null) {
        fail('no identity attached');
      } else {
        if (identity.externalId !== step.user.sub || body.user !== step.user.sub) fail(`identity or context user is not ${step.user.sub}`);
        if (step.cached && firstSeen.get(step.user.sub) !== identity.id) fail('expected the cached identity');
        firstSeen.set(step.user.sub, identity.id);
      }
      if (emulator !== undefined && (step.user === null || step.cached) && orqCalls !== 0) fail(`expected no orq call, saw ${orqCalls}`);
    }
    if (emulator !== undefined && emulator.identities().length !== 2) problems.push(`orq: expected 2 identities, found ${emulator.identities().length}`);
  } finally {
    await app.close();
  }
  for (const error of reported) problems.push(`onError: ${error.code}: ${error.message}`);
}

/** Runs the check for one example; sets a failing exit code and prints what went wrong. */
export async function runFrameworkDemo(name: string, example: FrameworkExample): Promise<void> {
  setTimeout(() => {
    console.error('demo: timed out after 30 s');
    process.exit(1);
  }, 30_000).unref();
  const problems: string[] = [];
  const emulator = process.env.ORQ_API_KEY ? undefined : await startOrqEmulator();
  try {
    await check(example, emulator, problems);
  } catch (error) {
    problems.push(`unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    await emulator?.close();
  }
  if (problems.length === 0) console.log(`\nOK (${name}): each user was registered once; alice's second request was served from the cache.`);
  else {
    console.error(`\nFAILED (${name}):\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    process.exitCode = 1;
  }
}
