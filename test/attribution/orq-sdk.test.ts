// withOrqIdentity over @orq-ai/node: deployments invoke/stream, router chat completions and responses attributed from a real Express app.
import { Orq } from '@orq-ai/node';
import { HTTPClient } from '@orq-ai/node/lib/http.js';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { orqIdentityRequestHook, runWithOrqUser, withOrqIdentity } from '../../src/index.js';
import type { OrqEmulator } from '../../src/testing/index.js';
import { startEmulator } from '../helpers.js';
import { attributionApp, llmCalls } from './app.js';

type Call = 'invoke' | 'stream' | 'chat' | 'chat-stream' | 'responses';

/** Makes one LLM call of the given kind through `orq` and returns its text, reading streams to the end. */
async function callThrough(orq: Orq, kind: Call): Promise<string> {
  const messages = [{ role: 'user' as const, content: 'hi' }];
  switch (kind) {
    case 'invoke': {
      const answer = await orq.deployments.invoke({ key: 'bot', messages });
      const message = answer?.choices[0]?.message;
      return message !== undefined && 'content' in message && typeof message.content === 'string' ? message.content : '';
    }
    case 'stream': {
      let text = '';
      for await (const event of await orq.deployments.stream({ key: 'bot', messages })) {
        const message = event.data?.choices[0]?.message;
        if (message !== undefined && 'content' in message && typeof message.content === 'string') text += message.content;
      }
      return text;
    }
    case 'chat': {
      const completion = await orq.router.chat.completions.create({ model: 'openai/gpt-4o-mini', messages });
      return 'choices' in completion ? String(completion.choices[0]?.message.content) : '';
    }
    case 'chat-stream': {
      const stream = await orq.router.chat.completions.create({ model: 'openai/gpt-4o-mini', messages, stream: true });
      let chunks = 0;
      for await (const chunk of stream as AsyncIterable<unknown>) if (chunk !== undefined) chunks++;
      return `${chunks} chunks`;
    }
    case 'responses': {
      const response = await orq.responses.create({ model: 'openai/gpt-4o-mini', input: 'hi' });
      return 'status' in response ? response.status : '';
    }
  }
}

async function sdkApp(upsert?: boolean) {
  const holder: { orq?: Orq } = {};
  const setup = await attributionApp(async (req) => callThrough(holder.orq as Orq, req.body.kind as Call));
  holder.orq = withOrqIdentity(new Orq({ apiKey: setup.emulator.apiKey, serverURL: setup.emulator.url }), upsert === undefined ? {} : { upsert });
  return { ...setup, orq: holder.orq };
}

const kinds: Call[] = ['invoke', 'stream', 'chat', 'chat-stream', 'responses'];

describe('withOrqIdentity', () => {
  it('tags every covered call with the request\'s user through the header, and returns the client\'s answers untouched', async () => {
    const { app, emulator } = await sdkApp();
    const answers: string[] = [];
    for (const kind of kinds) {
      answers.push((await request(app).post('/ask').set('x-user-id', `sdk-${kind}`).set('x-user-name', 'Never In A Header').send({ kind }).expect(200)).body.answer);
    }
    await request(app).post('/ask').send({ kind: 'chat' }).expect(200);
    expect(answers).toEqual(['This is an emulated response.', 'This is an emulated response.', 'This is an emulated response.', expect.stringMatching(/^\d+ chunks$/), 'completed']);
    expect(llmCalls(emulator).map((call) => [call.path, call.identity ?? null])).toEqual([
      ['/v2/deployments/invoke', { externalId: 'sdk-invoke', source: 'header' }],
      ['/v2/deployments/stream', { externalId: 'sdk-stream', source: 'header' }],
      ['/v2/router/chat/completions', { externalId: 'sdk-chat', source: 'header' }],
      ['/v2/router/chat/completions', { externalId: 'sdk-chat-stream', source: 'header' }],
      ['/v3/router/responses', { externalId: 'sdk-responses', source: 'header' }],
      ['/v2/router/chat/completions', null],
    ]);
    expect(JSON.stringify(emulator.calls.map((call) => call.headers))).not.toContain('Never In A Header');
  });

  it('upsert: true also sends the body identity where the SDK has a field for it, so the gateway registers the profile', async () => {
    const { app, emulator } = await sdkApp(true);
    for (const kind of ['invoke', 'chat', 'responses'] as const) {
      await request(app).post('/ask').set('x-user-id', `up-${kind}`).set('x-user-name', `Up ${kind}`).send({ kind }).expect(200);
    }
    expect(llmCalls(emulator).map((call) => [call.identity?.externalId, call.identity?.source, call.headers['x-orq-identity-id']])).toEqual([
      ['up-invoke', 'body', 'up-invoke'],
      ['up-chat', 'orq-field', 'up-chat'],
      ['up-responses', 'body', 'up-responses'],
    ]);
    // The identity lookups of the middleware and the gateway's upserts agree on the display name.
    expect(emulator.identities().find((identity) => identity.external_id === 'up-chat')?.display_name).toBe('Up chat');
  });

  it('covers every call of the table, positional agents calls included: header always, body identity with upsert where the SDK takes one', async () => {
    const emulator = await startEmulator({ shape: 'sdk' });
    const message = { role: 'user' as const, parts: [{ kind: 'text' as const, text: 'hi' }] };
    const agent = { key: 'a', model: 'm', role: 'r', instructions: 'i', message, settings: { tools: [] }, path: 'p' };
    const through = (orq: Orq): Array<() => Promise<unknown>> => [
      () => orq.router.completions.create({ model: 'm', prompt: 'hi' }),
      () => orq.router.embeddings.create({ model: 'm', input: 'hi' }),
      () => orq.agents.invoke('a', { message }),
      () => orq.agents.stream({ message }, 'a'),
      () => orq.agents.run(agent),
      () => orq.agents.streamRun(agent),
      () => orq.agents.responses.create({ message }, 'a'),
    ];
    const user = { externalId: 'agent-user', displayName: 'Agent', email: 'agent@example.com', tags: ['t'] };
    const sent = { id: 'agent-user', display_name: 'Agent', email: 'agent@example.com', tags: ['t'] };
    for (const upsert of [false, true]) {
      const orq = withOrqIdentity(new Orq({ apiKey: emulator.apiKey, serverURL: emulator.url }), { upsert });
      // The emulator routes none of these: each call reaches it and fails there, never in the SDK's own input checks.
      const failures = await runWithOrqUser(user, () => Promise.all(through(orq).map(async (call) => call().then(() => undefined, (error: Error) => error.name))));
      expect(failures.filter((name) => name === 'SDKValidationError')).toEqual([]);
    }
    const seen = emulator.calls.map((call) => {
      const body = call.body as { identity?: unknown; orq?: { identity?: unknown } };
      return [call.path, call.headers['x-orq-identity-id'], body.identity ?? body.orq?.identity ?? null];
    });
    expect(seen).toEqual([
      ['/v2/router/completions', 'agent-user', null],
      ['/v2/router/embeddings', 'agent-user', null],
      ['/v2/agents/a/task', 'agent-user', null],
      ['/v2/agents/a/stream-task', 'agent-user', null],
      ['/v2/agents/run', 'agent-user', null],
      ['/v2/agents/stream-run', 'agent-user', null],
      ['/v2/agents/a/responses', 'agent-user', null],
      ['/v2/router/completions', 'agent-user', sent],
      ['/v2/router/embeddings', 'agent-user', null],
      ['/v2/agents/a/task', 'agent-user', sent],
      ['/v2/agents/a/stream-task', 'agent-user', sent],
      ['/v2/agents/run', 'agent-user', sent],
      ['/v2/agents/stream-run', 'agent-user', sent],
      ['/v2/agents/a/responses', 'agent-user', sent],
    ]);
  });

  it('never overrides an identity the caller set, in the body or in a header', async () => {
    const emulator = await startEmulator({ shape: 'sdk' });
    const orq = withOrqIdentity(new Orq({ apiKey: emulator.apiKey, serverURL: emulator.url }), { upsert: true });
    const body = { key: 'bot', identity: { id: 'explicit-body' } };
    await runWithOrqUser('current', async () => {
      await orq.deployments.invoke(body);
      await orq.router.chat.completions.create({ model: 'm', messages: [], orq: { identity: { id: 'explicit-orq' } } });
      await orq.responses.create({ model: 'm', input: 'hi' }, { headers: { 'X-ORQ-IDENTITY-ID': 'explicit-header' } });
      await orq.responses.create({ model: 'm', input: 'hi' }, { fetchOptions: { headers: { 'x-orq-identity-id': 'explicit-fetch-options' } } });
    });
    expect(emulator.calls.map((call) => [call.identity?.externalId, call.headers['x-orq-identity-id']])).toEqual([
      ['explicit-body', undefined],
      ['explicit-orq', undefined],
      ['explicit-header', 'explicit-header'],
      ['explicit-fetch-options', 'explicit-fetch-options'],
    ]);
    // The caller's request object is left as it was.
    expect(body).toEqual({ key: 'bot', identity: { id: 'explicit-body' } });
  });

  it('is the same client: instanceof, private-field methods, and calls it does not cover all work as before', async () => {
    const emulator = await startEmulator({ shape: 'sdk' });
    emulator.seed({ externalId: 'plain' });
    const real = new Orq({ apiKey: emulator.apiKey, serverURL: emulator.url });
    const orq = withOrqIdentity(real);
    expect(orq).toBeInstanceOf(Orq);
    expect(orq.deployments).toBe(orq.deployments);
    const { identity } = await runWithOrqUser('someone', () => orq.identities.retrieve({ id: 'plain' }));
    expect(identity.externalId).toBe('plain');
    expect(emulator.calls[0]?.headers['x-orq-identity-id']).toBeUndefined();
  });

  it('sends no header for an id a header cannot carry, the body identity still with upsert; and keeps per-call options it extends', async () => {
    const emulator = await startEmulator({ shape: 'sdk' });
    const orq = withOrqIdentity(new Orq({ apiKey: emulator.apiKey, serverURL: emulator.url }), { upsert: true });
    await runWithOrqUser('caf\u00e9-user', () => orq.deployments.invoke({ key: 'bot' }));
    const plain = withOrqIdentity(new Orq({ apiKey: emulator.apiKey, serverURL: emulator.url }));
    await runWithOrqUser('optioned', () => plain.deployments.invoke({ key: 'bot' }, { timeoutMs: 5_000 }));
    expect(emulator.calls.map((call) => [call.headers['x-orq-identity-id'], call.identity?.externalId, call.identity?.source])).toEqual([
      [undefined, 'caf\u00e9-user', 'body'],
      ['optioned', 'optioned', 'header'],
    ]);
  });

  it('with upsert, puts the identity into an `orq` field the caller left null', async () => {
    const emulator = await startEmulator({ shape: 'sdk' });
    const orq = withOrqIdentity(new Orq({ apiKey: emulator.apiKey, serverURL: emulator.url }), { upsert: true });
    await runWithOrqUser('null-orq', () => orq.router.chat.completions.create({ model: 'm', messages: [], orq: null as never }));
    expect(emulator.calls.map((call) => [call.identity?.externalId, call.identity?.source])).toEqual([['null-orq', 'orq-field']]);
  });

  it('with upsert, invents no body for a call made without one: the header alone names the user', async () => {
    const emulator = await startEmulator({ shape: 'sdk' });
    const orq = withOrqIdentity(new Orq({ apiKey: emulator.apiKey, serverURL: emulator.url }), { upsert: true });
    // The emulator does not route agent tasks: the call reaches it and fails there.
    await runWithOrqUser('bodiless', () => orq.agents.invoke('a')).catch(() => undefined);
    expect(emulator.calls.map((call) => [call.path, call.headers['x-orq-identity-id'], call.body])).toEqual([['/v2/agents/a/task', 'bodiless', undefined]]);
  });

  it('gives back what the client has where it lacks a listed namespace or method (an older or newer SDK)', () => {
    const create = { not: 'a function' };
    const client = { deployments: undefined, router: null, responses: { create }, agents: 'agents' };
    const wrapped = withOrqIdentity(client);
    expect(wrapped.deployments).toBeUndefined();
    expect(wrapped.router).toBeNull();
    expect(wrapped.responses.create).toBe(create);
    expect(wrapped.agents).toBe('agents');
    // A name the table does not list, inherited ones included, is the client's own.
    expect((wrapped as { __proto__?: unknown }).__proto__).toBe(Object.prototype);
  });

  it.each([
    [null, /pass your @orq-ai\/node client.*; received null\./],
    [{ upsert: 'yes' }, /`upsert` must be a boolean, received string/],
    [42, /pass your @orq-ai\/node client, e\.g\. `withOrqIdentity\(new Orq\(\{ apiKey \}\)\)`; received number\./],
  ])('refuses %j at start-up', (bad, message) => {
    const make = () => (bad === null || typeof bad === 'number' ? withOrqIdentity(bad as unknown as object) : withOrqIdentity({}, bad as never));
    expect(make).toThrow(TypeError);
    expect(make).toThrow(message);
  });
});

describe('orqIdentityRequestHook (HTTPClient route)', () => {
  it('tags every call of a client built with the hooked HTTPClient', async () => {
    const emulator: OrqEmulator = await startEmulator({ shape: 'sdk' });
    const httpClient = new HTTPClient();
    httpClient.addHook('beforeRequest', orqIdentityRequestHook());
    const orq = new Orq({ apiKey: emulator.apiKey, serverURL: emulator.url, httpClient });
    await runWithOrqUser('hooked', async () => {
      await orq.router.chat.completions.create({ model: 'm', messages: [] });
      await orq.responses.create({ model: 'm', input: 'hi' }, { headers: { 'x-orq-identity-id': 'kept' } });
    });
    await orq.deployments.invoke({ key: 'bot' });
    await runWithOrqUser('caf\u00e9', () => orq.deployments.invoke({ key: 'bot' }));
    expect(emulator.calls.map((call) => call.identity?.externalId)).toEqual(['hooked', 'kept', undefined, undefined]);
  });
});
