// Never another request's user: hundreds of interleaved requests making streamed, delayed and SDK calls, and an identity-endpoint outage with every call still attributed.
import { setTimeout as sleep } from 'node:timers/promises';
import { Orq } from '@orq-ai/node';
import OpenAI from 'openai';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { currentOrqIdentity, orqIdentityFetch, withOrqIdentity, type OrqIdentityOptions } from '../../src/index.js';
import type { EmulatorCall } from '../../src/testing/index.js';
import { attributionApp, llmCalls } from './app.js';

/** The request number each LLM call carries in its prompt, so every call orq received can be traced to its request. */
function requestNumberOf(call: EmulatorCall): number {
  const body = call.body as { messages?: Array<{ content?: unknown }>; input?: unknown };
  const text = String(body.messages?.[0]?.content ?? body.input ?? '');
  const match = /^request (\d+)$/.exec(text);
  if (match === null) throw new Error(`call without a request number: ${text}`);
  return Number(match[1]);
}

/** An app whose /ask makes 2–3 LLM calls per request: plain, streamed after a timer, and (every third) through @orq-ai/node. */
async function busyApp(middleware: Partial<OrqIdentityOptions> = {}) {
  const holder: { openai?: OpenAI; orq?: Orq } = {};
  const setup = await attributionApp(async (req) => {
    const n = Number(req.body.n);
    const openai = holder.openai as OpenAI;
    const prompt = `request ${n}`;
    await openai.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: prompt }] });
    await sleep(n % 7);
    const stream = await openai.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: prompt }], stream: true });
    for await (const chunk of stream) void chunk;
    if (n % 3 === 0) {
      await new Promise((resolve) => setTimeout(resolve, n % 5));
      if (n % 2 === 0) await (holder.orq as Orq).deployments.invoke({ key: 'bot', messages: [{ role: 'user', content: prompt }] });
      else await (holder.orq as Orq).responses.create({ model: 'openai/gpt-4o-mini', input: prompt });
    }
    return { identity: currentOrqIdentity()?.externalId ?? null };
  }, middleware);
  holder.openai = new OpenAI({ apiKey: setup.emulator.apiKey, baseURL: setup.routerURL, fetch: orqIdentityFetch({ origins: [setup.emulator.url] }), maxRetries: 0 });
  holder.orq = withOrqIdentity(new Orq({ apiKey: setup.emulator.apiKey, serverURL: setup.emulator.url }));
  return setup;
}

function expectedCalls(n: number): number {
  return n % 3 === 0 ? 3 : 2;
}

describe('attribution under load', () => {
  it('200 interleaved requests of 100 users, 2–3 calls each (plain, streamed, after timers, via the SDK): every call orq received names its request\'s user', async () => {
    const { app, emulator } = await busyApp();
    emulator.setLatency(1);
    const requests = Array.from({ length: 200 }, (_, n) => ({ n, user: `load-user-${(n * 37) % 100}` }));
    const userOf = new Map(requests.map(({ n, user }) => [n, user]));
    const answers = await Promise.all(requests.map(({ n, user }) => request(app).post('/ask').set('x-user-id', user).send({ n })));
    expect(answers.filter((answer) => answer.status !== 200)).toEqual([]);

    const calls = llmCalls(emulator);
    expect(calls).toHaveLength(requests.reduce((sum, { n }) => sum + expectedCalls(n), 0));
    const wrong = calls.filter((call) => call.identity?.externalId !== userOf.get(requestNumberOf(call)));
    expect(wrong.map((call) => [requestNumberOf(call), call.identity?.externalId])).toEqual([]);
    expect(calls.filter((call) => call.streamed === true)).toHaveLength(200);
  }, 60_000);

  it.each([
    ['answers 503', { kind: 'status', status: 503 }],
    ['hangs', { kind: 'hang' }],
  ] as const)('while the identity endpoint %s, every LLM call still carries its user: 0 unattributed', async (_name, fault) => {
    const { app, emulator } = await busyApp({ timeoutMs: 100, lookupTimeoutMs: 300, retries: 0 });
    emulator.inject({ ...fault, operation: 'retrieve' });
    emulator.inject({ ...fault, operation: 'create' });
    const requests = Array.from({ length: 30 }, (_, n) => ({ n, user: `outage-user-${n % 10}` }));
    const userOf = new Map(requests.map(({ n, user }) => [n, user]));
    const answers = await Promise.all(requests.map(({ n, user }) => request(app).post('/ask').set('x-user-id', user).send({ n })));
    // The requests went on without identities, as failOpen promises...
    expect(answers.map((answer) => answer.status)).toEqual(requests.map(() => 200));
    expect(answers.map((answer) => answer.body.answer.identity)).toEqual(requests.map(() => null));
    // ...and orq still learned who made each call.
    const calls = llmCalls(emulator);
    expect(calls).toHaveLength(requests.reduce((sum, { n }) => sum + expectedCalls(n), 0));
    expect(calls.filter((call) => call.identity === undefined)).toHaveLength(0);
    expect(calls.filter((call) => call.identity?.externalId !== userOf.get(requestNumberOf(call)))).toHaveLength(0);
  }, 30_000);
});
