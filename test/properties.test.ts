// Property-based: generated users and generated orq answers against the emulator, checked against the invariants
// docs/failures.md promises. `npm test` runs a few dozen cases; ORQ_FUZZ_RUNS=<n> (as .ci/run does) runs n per property.
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { Orq } from '@orq-ai/node';
import fc from 'fast-check';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createIdentityResolver, currentOrqIdentity, orqIdentity, OrqIdentityError, OrqUnavailableError, type OrqIdentityMiddleware } from '../src/index.js';
import { startOrqEmulator, type Fault, type OrqEmulator } from '../src/testing/index.js';
import { externalIdProblem } from '../src/user.js';
import { expectNoKey } from './no-key.js';
import { withoutUnhandledRejections } from './unhandled.js';

const fuzzRuns = Number(process.env.ORQ_FUZZ_RUNS ?? 0);
const runs = (quick: number): number => (Number.isInteger(fuzzRuns) && fuzzRuns > 0 ? fuzzRuns : quick);
/** ORQ_FUZZ_SEED (and ORQ_FUZZ_PATH) replay a failure fast-check printed. */
const replay = process.env.ORQ_FUZZ_SEED === undefined ? {} : { seed: Number(process.env.ORQ_FUZZ_SEED), path: process.env.ORQ_FUZZ_PATH };
const apiKey = 'sk-fuzz-7d1e0c9b2a4f6e8d';
const timeoutMs = 150;
/**
 * Generous on purpose: the machine is shared. What it catches is a request left waiting on orq or on a queue,
 * which lookupTimeoutMs (well above timeoutMs + marginMs) would show.
 */
const marginMs = 1_200;
const lookupTimeoutMs = 2_500;

interface Outcome {
  status: number;
  elapsedMs: number;
  identity: { externalId?: unknown } | null;
  current: { externalId?: unknown } | null;
}

/** An app as a user would write it: its own auth stand-in (x-case picks what getUser returns), the middleware, a handler. */
function appFor(middleware: OrqIdentityMiddleware): express.Express {
  const app = express();
  app.use(middleware);
  app.get('/whoami', async (req: Request, res: Response) => {
    await new Promise((resolve) => setImmediate(resolve));
    res.json({ identity: req.orqIdentity ?? null, current: currentOrqIdentity() ?? null });
  });
  // With failOpen: false the middleware passes an OrqUnavailableError (status 503) here; anything else is a bug.
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = error instanceof OrqUnavailableError ? 503 : 500;
    res.status(status).json({ identity: null, current: null });
  });
  return app;
}

async function ask(app: express.Express, header: string, value: string): Promise<Outcome> {
  const started = Date.now();
  const response = await request(app).get('/whoami').set(header, value).timeout(timeoutMs + marginMs + 2_000);
  const body = response.body as { identity: Outcome['identity']; current: Outcome['current'] };
  return { status: response.status, elapsedMs: Date.now() - started, identity: body.identity, current: body.current };
}

/** Every request that reached orq is one the identities API can address: its own path, a valid id, our key. */
function expectWellFormedCalls(emulator: OrqEmulator): void {
  for (const call of emulator.calls) {
    expect(['retrieve', 'create', 'update']).toContain(call.operation);
    expect(call.headers.authorization).toBe(`Bearer ${apiKey}`);
    if (call.operation === 'create') {
      const body = call.body as { external_id?: unknown };
      expect(typeof body.external_id).toBe('string');
      expect(externalIdProblem(body.external_id)).toBeUndefined();
    } else {
      const segment = call.path.slice('/v2/identities/'.length);
      expect(segment).not.toContain('/');
      expect(externalIdProblem(decodeURIComponent(segment))).toBeUndefined();
    }
  }
}

function expectOnlyOwnIdentity(outcome: Outcome, expected: string | undefined, failOpen = true): void {
  expect(failOpen ? [200] : [200, 503]).toContain(outcome.status);
  expect(outcome.elapsedMs).toBeLessThan(timeoutMs + marginMs);
  for (const seen of [outcome.identity, outcome.current]) {
    if (seen === null) continue;
    expect(expected).toBeDefined();
    expect(seen.externalId).toBe(expected);
  }
}

// ---------------------------------------------------------------- users

/** What getUser returns for one request (made fresh per request: Proxies and thenables are single-use), and the id it stands for. */
interface UserCase {
  label: string;
  make: () => unknown;
  /** The external id this user must resolve to, or undefined when nothing may be attached. */
  expected: string | undefined;
}

function expectedId(id: unknown): string | undefined {
  const normalised = typeof id === 'number' && Number.isSafeInteger(id) ? String(id) : id;
  return typeof normalised === 'string' && externalIdProblem(normalised) === undefined ? normalised : undefined;
}

const cyclic = (): Record<string, unknown> => {
  const value: Record<string, unknown> = { name: 'loop' };
  value.self = value;
  return value;
};

/** Ids across all of Unicode (lone surrogates and controls included), the edge cases by name, and non-strings. */
const anyId: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ unit: 'binary', minLength: 0, maxLength: 130 }),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 }),
  fc.constantFrom(
    '', '.', '..', '/', 'a/b', 'https://issuer.example/u/1', '%2F', '%', '?#', 'contact_01HX', ' padded ', '\u0085', '\u009b1m',
    '\ud800', 'a\udc00', '\u2028', 'x'.repeat(120), 'x'.repeat(121), '😀'.repeat(60), 'auth0|5f7c', 'a\\b', 'null', '__proto__', 'constructor',
  ),
  fc.integer(), fc.double(), fc.bigInt(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.constant(Symbol('id')),
  fc.constant(Number.MAX_SAFE_INTEGER + 2), fc.constant(-0), fc.constant({}), fc.constant([]),
);

/** Profile fields of every type: valid, wrong, huge, cyclic, BigInt, getters that throw. */
const anyProfile: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    displayName: fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.anything(), fc.constant('n'.repeat(100_000))),
    email: fc.oneof(fc.emailAddress(), fc.anything()),
    avatarUrl: fc.oneof(fc.webUrl(), fc.constant('javascript:alert(1)'), fc.anything()),
    tags: fc.oneof(fc.array(fc.string(), { maxLength: 5 }), fc.anything(), fc.constant(Array.from({ length: 5_000 }, (_, i) => `t${i}`))),
    metadata: fc.oneof(
      fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 4 }),
      fc.anything(),
      fc.constant({ big: 10n }),
      fc.constant({ blob: 'm'.repeat(200_000) }),
    ),
  },
  { requiredKeys: [] },
);

const throwing = (what: string) => (): never => {
  throw new Error(`${what} getter threw`);
};

const anyUser: fc.Arbitrary<UserCase> = fc.oneof(
  anyId.map((id): UserCase => ({ label: 'plain id', make: () => id, expected: id === null || id === undefined ? undefined : expectedId(id) })),
  fc.tuple(anyId, anyProfile).map(([id, profile]): UserCase => ({
    label: 'object', make: () => ({ ...profile, externalId: id }), expected: expectedId(id),
  })),
  fc.tuple(anyId, anyProfile).map(([id, profile]): UserCase => ({
    label: 'object with cyclic metadata and throwing profile getters',
    make: () => Object.defineProperties({ ...profile, externalId: id, metadata: cyclic() }, { email: { get: throwing('email'), enumerable: true } }),
    expected: expectedId(id),
  })),
  anyId.map((id): UserCase => ({
    label: 'getters', make: () => ({ get externalId(): unknown { return id; }, get tags(): never { return throwing('tags')(); } }), expected: expectedId(id),
  })),
  fc.constant<UserCase>({ label: 'throwing id getter', make: () => ({ get externalId(): never { return throwing('externalId')(); } }), expected: undefined }),
  anyId.map((id): UserCase => ({
    label: 'Proxy',
    make: () => new Proxy({ externalId: id }, {
      get: (target, key) => (key === 'externalId' ? target.externalId : key === 'metadata' ? throwing('metadata trap')() : undefined),
    }),
    expected: expectedId(id),
  })),
  fc.constant<UserCase>({
    label: 'revoked Proxy',
    make: () => {
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      return proxy;
    },
    expected: undefined,
  }),
  fc.constant<UserCase>({ label: 'custom toString', make: () => ({ toString: () => 'User#1', valueOf: throwing('valueOf') }), expected: undefined }),
  fc.constant<UserCase>({ label: 'rejecting promise', make: () => Promise.reject(new Error('no user')), expected: undefined }),
  fc.constant<UserCase>({ label: 'never-settling promise', make: () => new Promise<never>(() => undefined), expected: undefined }),
  fc.constant<UserCase>({ label: 'thenable with throwing then', make: () => ({ get then(): never { return throwing('then')(); } }), expected: undefined }),
  fc.constant<UserCase>({ label: 'function', make: () => () => 'id', expected: undefined }),
).chain((inner) =>
  fc.boolean().map((async): UserCase => (async ? { label: `async ${inner.label}`, make: () => Promise.resolve().then(inner.make), expected: inner.expected } : inner)),
);

describe('generated users (any value getUser can return)', () => {
  it('never crash, stall, mix up users, send orq a malformed request, or leak the key', async () => {
    const emulator = await startOrqEmulator({ apiKey });
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(anyUser, { minLength: 1, maxLength: 8 }), async (cases) => {
          emulator.resetCalls();
          const errors: unknown[] = [];
          const middleware = orqIdentity({
            apiKey, serverURL: emulator.url, timeoutMs, lookupTimeoutMs,
            getUser: (req) => cases[Number(req.header('x-case'))]?.make() as never,
            onError: (error) => errors.push(error),
          });
          const app = appFor(middleware);
          await withoutUnhandledRejections(async () => {
            const outcomes = await Promise.all(cases.map((_, index) => ask(app, 'x-case', String(index))));
            outcomes.forEach((outcome, index) => expectOnlyOwnIdentity(outcome, cases[index]?.expected));
            await middleware.close({ timeoutMs: 2_000 });
          });
          expectWellFormedCalls(emulator);
          expect(errors.every((error) => error instanceof OrqIdentityError)).toBe(true);
          expectNoKey(errors, apiKey);
        }),
        { numRuns: runs(25), endOnFailure: true, ...replay },
      );
    } finally {
      await emulator.close();
    }
  }, 20_000 + runs(25) * 1_000);
});

// ---------------------------------------------------------------- orq answers

const users = ['ana', 'bo', 'tenant/7', '42'];

const identityBody = (externalId: string): string => JSON.stringify({ _id: `contact_${externalId.length}`, external_id: externalId });

const anyRetryAfter = fc.oneof(fc.nat().map(String), fc.constant('100000000'), fc.string(), fc.date().map((date) => date.toUTCString()));

/** What orq (or a gateway in front of it) might answer: any status, shape, body, content type, delay, or none at all. */
const anyFault: fc.Arbitrary<Fault> = fc.tuple(
  fc.oneof(
    fc.record({ kind: fc.constant('status' as const), status: fc.integer({ min: 300, max: 599 }), body: fc.jsonValue() }),
    fc.record({ kind: fc.constant('status' as const), status: fc.constant(429), headers: anyRetryAfter.map((value) => ({ 'Retry-After': value })) }),
    fc.record({
      kind: fc.constant('raw' as const),
      status: fc.constantFrom(200, 201, 204, 302, 307, 404, 500),
      body: fc.oneof(fc.string({ maxLength: 50 }), fc.json(), fc.constantFrom(...users, 'someone-else').map(identityBody), fc.constant('')),
      headers: fc.constantFrom({}, { 'content-type': 'application/json' }, { 'content-type': 'text/html' }),
    }),
    fc.record({ kind: fc.constant('status' as const), status: fc.constantFrom(200, 201), body: fc.constantFrom(...users, 'someone-else').map((id) => JSON.parse(identityBody(id)) as unknown) }),
    fc.record({ kind: fc.constant('echo' as const), status: fc.constantFrom(400, 401, 500, 502) }),
    fc.constant({ kind: 'hang' as const }),
    fc.constant({ kind: 'reset' as const }),
    fc.record({ kind: fc.constant('latency' as const), ms: fc.integer({ min: 0, max: 300 }) }),
  ),
  fc.constantFrom('retrieve', 'create', 'update', 'any') as fc.Arbitrary<'retrieve' | 'create' | 'update' | 'any'>,
  fc.integer({ min: 1, max: 4 }),
).map(([effect, operation, times]) => ({ ...effect, operation, times }) as Fault);

const anyScenario = fc.record({
  shape: fc.constantFrom('documented', 'sdk') as fc.Arbitrary<'documented' | 'sdk'>,
  conflictStatus: fc.constantFrom(400, 409, 422),
  latencyMs: fc.integer({ min: 0, max: 60 }),
  seeded: fc.subarray(users),
  faults: fc.array(anyFault, { maxLength: 4 }),
  retries: fc.integer({ min: 0, max: 2 }),
  requests: fc.array(fc.constantFrom(...users), { minLength: 1, maxLength: 12 }),
  /** A second round after the first settles: cache hits, failure memory, an open circuit. */
  again: fc.boolean(),
  failOpen: fc.boolean(),
  context: fc.boolean(),
  /** The package's own fetch transport (apiKey) or the app's @orq-ai/node client. */
  transport: fc.constantFrom('fetch', 'sdk') as fc.Arbitrary<'fetch' | 'sdk'>,
});

describe('generated orq answers (statuses, shapes, bodies, delays, resets)', () => {
  it('never crash, stall, attach another user, or leak the key', async () => {
    await fc.assert(
      fc.asyncProperty(anyScenario, async (scenario) => {
        const emulator = await startOrqEmulator({ apiKey, shape: scenario.shape, conflictStatus: scenario.conflictStatus, latencyMs: scenario.latencyMs });
        const errors: unknown[] = [];
        const connection = scenario.transport === 'sdk' ? { client: new Orq({ apiKey, serverURL: emulator.url }) } : { apiKey, serverURL: emulator.url };
        const middleware = orqIdentity({
          ...connection, timeoutMs, lookupTimeoutMs, retries: scenario.retries,
          circuitBreaker: { cooldownMs: 200 }, failureMemoryMs: 100, failOpen: scenario.failOpen, context: scenario.context,
          getUser: (req) => req.header('x-user'),
          onError: (error) => errors.push(error),
        });
        try {
          for (const externalId of scenario.seeded) emulator.seed({ externalId });
          for (const fault of scenario.faults) emulator.inject(fault);
          const app = appFor(middleware);
          await withoutUnhandledRejections(async () => {
            for (let round = 0; round < (scenario.again ? 2 : 1); round++) {
              const outcomes = await Promise.all(scenario.requests.map((user) => ask(app, 'x-user', user)));
              outcomes.forEach((outcome, index) => expectOnlyOwnIdentity(outcome, scenario.requests[index], scenario.failOpen));
            }
            // Lookups still hanging are cut when the emulator closes; waiting for them would only slow the suite.
            await middleware.close({ timeoutMs: 100 });
          });
          expectWellFormedCalls(emulator);
          expect(errors.every((error) => error instanceof OrqIdentityError)).toBe(true);
          expectNoKey(errors, apiKey);
        } finally {
          await emulator.close();
        }
      }),
      { numRuns: runs(12), endOnFailure: true, ...replay },
    );
  }, 20_000 + runs(12) * 2_000);
});

describe('generated users through createIdentityResolver (no Express in front)', () => {
  it('resolve() never throws, and settles with this user or an OrqIdentityError', async () => {
    const emulator = await startOrqEmulator({ apiKey });
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(anyUser, { minLength: 1, maxLength: 6 }), async (cases) => {
          const resolver = createIdentityResolver({ apiKey, serverURL: emulator.url, lookupTimeoutMs, onError: () => undefined });
          await withoutUnhandledRejections(async () => {
            const settled = await Promise.all(cases.map(async (userCase) => {
              // The resolver takes a user, not a promise of one: waiting for a promise is the middleware's job.
              if (userCase.label.includes('never-settling')) return;
              const user = await Promise.resolve().then(userCase.make).catch(() => undefined);
              if (user === null || user === undefined) return;
              let pending: Promise<unknown> = Promise.resolve(undefined);
              expect(() => { pending = resolver.resolve(user as never, undefined, timeoutMs); }).not.toThrow();
              const outcome = await pending.then((identity) => identity, (error: unknown) => error);
              if (outcome instanceof Error) expect(outcome).toBeInstanceOf(OrqIdentityError);
              else expect((outcome as { externalId: string }).externalId).toBe(userCase.expected);
            }));
            expect(settled).toHaveLength(cases.length);
            await resolver.close({ timeoutMs: 2_000 });
          });
          expectWellFormedCalls(emulator);
          emulator.resetCalls();
        }),
        { numRuns: runs(20), endOnFailure: true, ...replay },
      );
    } finally {
      await emulator.close();
    }
  }, 20_000 + runs(20) * 1_000);
});
