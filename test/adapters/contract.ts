// The promises every framework adapter keeps, as one suite: a real app of the framework over real HTTP against the emulator.
// A new adapter is a new AdapterHarness and one call of adapterContract, not a copy of these tests.
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import type { RequestIdentityOptions } from '../../src/core/request-identity.js';
import { currentOrqIdentity, currentOrqUser, InvalidUserError, orqIdentityFetch, type OrqIdentityError } from '../../src/index.js';
import { anonymousStreakLimit } from '../../src/misplaced-middleware.js';
import type { EmulatorCall, OrqEmulator, OrqEmulatorOptions } from '../../src/testing/index.js';
import { captureWarnings, startEmulator } from '../helpers.js';

/** What the contract passes to every adapter: options that do not depend on the framework's request type. */
export type ContractOptions = Omit<RequestIdentityOptions<unknown>, 'getUser' | 'skip' | 'onError'> & {
  onError: (error: OrqIdentityError) => void;
};

/** What a route handler of the app does; the harness answers with its result as JSON. */
export type Route = () => Promise<unknown>;

export interface HarnessApp {
  /** The app's origin, e.g. http://127.0.0.1:PORT. */
  url: string;
  close(): Promise<void>;
}

export interface AdapterHarness {
  /** The framework, for test names. */
  name: string;
  /**
   * Starts the framework's app on 127.0.0.1 with: an auth layer that puts the `x-user` header's id where the framework's
   * usual auth layer leaves the user (so the adapter's default getUser finds it), the adapter (before the auth layer when
   * `misplaced`), and `GET /route/<name>` for each route, answering `{ stored, answer }` where `stored` is the identity
   * where the framework keeps request state (null when none).
   */
  start(options: ContractOptions, routes: Record<string, Route>, misplaced?: boolean): Promise<HarnessApp>;
  /** A piece of the misplaced-adapter warning that tells this framework's users the fix in its own terms. */
  misplacedFix: string;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

interface Answer {
  status: number;
  body: { stored: { id: string; externalId: string } | null; answer: unknown } | Record<string, unknown>;
}

interface WhoAmI {
  before: string | null;
  current: string | null;
  user: string | null;
}

/** The identity and user the handler sees, before and after an await. */
const whoami: Route = async () => {
  const before = currentOrqIdentity()?.externalId ?? null;
  await sleep(1);
  await new Promise((resolve) => setImmediate(resolve));
  return { before, current: currentOrqIdentity()?.externalId ?? null, user: currentOrqUser()?.externalId ?? null } satisfies WhoAmI;
};

export function adapterContract(harness: AdapterHarness): void {
  const warnings = captureWarnings();

  async function start(
    options: Partial<ContractOptions> = {},
    extra: { emulator?: OrqEmulatorOptions; routes?: Record<string, Route>; misplaced?: boolean } = {},
  ): Promise<{ emulator: OrqEmulator; errors: OrqIdentityError[]; get(route: string, user?: string, headers?: Record<string, string>): Promise<Answer> }> {
    const emulator = await startEmulator(extra.emulator);
    const errors: OrqIdentityError[] = [];
    const app = await harness.start(
      { apiKey: emulator.apiKey, serverURL: emulator.url, budget: false, onError: (error) => errors.push(error), ...options },
      { whoami, ...extra.routes },
      extra.misplaced,
    );
    cleanups.push(() => app.close());
    return {
      emulator,
      errors,
      async get(route, user, headers = {}) {
        const response = await fetch(`${app.url}/route/${route}`, { headers: user === undefined ? headers : { ...headers, 'x-user': user } });
        const text = await response.text();
        // An error page may be text (Hono's and Koa's defaults): kept as it came.
        const json = (response.headers.get('content-type') ?? '').includes('application/json');
        return { status: response.status, body: (json ? JSON.parse(text) : { text }) as Answer['body'] };
      },
    };
  }

  describe(`${harness.name} adapter contract`, () => {
    it('registers a new user, stores the identity where the framework keeps request state, and answers the next request from the cache without a call', async () => {
      const { get, emulator, errors } = await start();
      const first = await get('whoami', 'contract-user');
      expect(first.status).toBe(200);
      expect(first.body.stored).toMatchObject({ externalId: 'contract-user', id: expect.stringMatching(/^contact_/) });
      expect(emulator.count('retrieve')).toBe(1);
      expect(emulator.count('create')).toBe(1);

      const second = await get('whoami', 'contract-user');
      expect(second.body).toEqual({ stored: first.body.stored, answer: { before: 'contract-user', current: 'contract-user', user: 'contract-user' } });
      expect(emulator.count()).toBe(2);
      expect(errors).toEqual([]);
    });

    it('leaves an anonymous request alone: nothing stored, nothing in the context, no call', async () => {
      const { get, emulator } = await start();
      expect(await get('whoami')).toEqual({ status: 200, body: { stored: null, answer: { before: null, current: null, user: null } } });
      expect(emulator.count()).toBe(0);
    });

    it('makes one retrieve and one create for 25 concurrent first requests of one user', async () => {
      const { get, emulator } = await start({}, { emulator: { latencyMs: 30 } });
      const answers = await Promise.all(Array.from({ length: 25 }, () => get('whoami', 'burst-user')));
      expect(new Set(answers.map((answer) => (answer.body.stored as { id?: string } | null)?.id)).size).toBe(1);
      expect(answers.map((answer) => (answer.body.answer as WhoAmI).current)).toEqual(answers.map(() => 'burst-user'));
      expect(emulator.count('retrieve')).toBe(1);
      expect(emulator.count('create')).toBe(1);
    });

    it("attributes the openai SDK's calls through orqIdentityFetch() to their own user, for 50 interleaved users across awaits", async () => {
      const holder: { openai?: OpenAI } = {};
      const ask: Route = async () => {
        const user = currentOrqUser()?.externalId;
        const openai = holder.openai as OpenAI;
        await openai.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: `from ${user}` }] });
        await sleep(Number(user?.slice(-1)) % 4);
        await openai.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: `from ${user}` }] });
        return { user: currentOrqIdentity()?.externalId ?? null };
      };
      const { get, emulator } = await start({}, { emulator: { shape: 'sdk', latencyMs: 1 }, routes: { ask } });
      holder.openai = new OpenAI({ apiKey: emulator.apiKey, baseURL: `${emulator.url}/v2/router`, fetch: orqIdentityFetch({ origins: [emulator.url] }), maxRetries: 0 });

      const users = Array.from({ length: 100 }, (_, n) => `llm-user-${n % 50}`);
      const answers = await Promise.all(users.map((user) => get('ask', user)));
      expect(answers.filter((answer) => answer.status !== 200)).toEqual([]);
      expect(answers.map((answer) => answer.body.answer)).toEqual(users.map((user) => ({ user })));
      const calls = emulator.calls.filter((call: EmulatorCall) => call.operation === 'chat');
      expect(calls).toHaveLength(200);
      const wrong = calls.filter((call) => {
        const prompt = String((call.body as { messages?: Array<{ content?: unknown }> }).messages?.[0]?.content);
        return prompt !== `from ${call.identity?.externalId}`;
      });
      expect(wrong).toEqual([]);
    }, 30_000);

    it('fails open when orq is down: the request goes on with its user in the context but no identity, and onError hears of it', async () => {
      const { get, emulator, errors } = await start({ retries: 0 });
      emulator.inject({ kind: 'status', status: 502 });
      const answer = await get('whoami', 'outage-user');
      expect(answer).toEqual({ status: 200, body: { stored: null, answer: { before: null, current: null, user: 'outage-user' } } });
      expect(errors.length).toBeGreaterThan(0);
    });

    it('answers 503 when orq is down and failOpen is false', async () => {
      const { get, emulator } = await start({ retries: 0, failOpen: false });
      emulator.inject({ kind: 'status', status: 502 });
      expect((await get('whoami', 'strict-user')).status).toBe(503);
    });

    it('skips a user whose id orq cannot take, reports it to onError, and serves the request', async () => {
      const { get, emulator, errors } = await start();
      const tooLong = 'x'.repeat(121);
      expect(await get('whoami', tooLong)).toEqual({ status: 200, body: { stored: null, answer: { before: null, current: null, user: null } } });
      expect(emulator.count()).toBe(0);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(InvalidUserError);
    });

    it("warns once, with a code and the framework's fix, when the adapter runs before the auth layer", async () => {
      const { get, emulator } = await start({}, { misplaced: true });
      for (let n = 0; n < anonymousStreakLimit; n += 1) {
        expect((await get('whoami', 'alice', { authorization: 'Bearer alice' })).body.stored).toBeNull();
      }
      expect(warnings.map((warning) => warning.code)).toEqual(['ORQ_IDENTITY_NO_USER_FOUND']);
      expect(warnings[0]?.message).toContain(harness.misplacedFix);
      expect(emulator.count()).toBe(0);
    });
  });
}
