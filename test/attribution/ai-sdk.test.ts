// The Vercel AI SDK (ai + @ai-sdk/openai-compatible) against the emulated router: generateText and streamText attributed through the fetch or the model middleware.
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, streamText, wrapLanguageModel, type LanguageModel } from 'ai';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { orqIdentityFetch, orqIdentityModelMiddleware, runWithOrqUser } from '../../src/index.js';
import { startEmulator } from '../helpers.js';
import { attributionApp, llmCalls } from './app.js';

async function ask(model: LanguageModel, streamed: boolean, headers?: Record<string, string>): Promise<string> {
  if (!streamed) return (await generateText({ model, prompt: 'hi', maxRetries: 0, ...(headers === undefined ? {} : { headers }) })).text;
  const result = streamText({ model, prompt: 'hi', maxRetries: 0 });
  let text = '';
  for await (const part of result.textStream) text += part;
  return text;
}

describe.each([
  ['orqIdentityFetch', 'fetch'],
  ['orqIdentityModelMiddleware', 'middleware'],
] as const)('the AI SDK with %s', (_name, route) => {
  it('attributes generateText and streamText to the request\'s user, answers untouched', async () => {
    const holder: { model?: LanguageModel } = {};
    const { app, emulator, routerURL } = await attributionApp(async (req) => ask(holder.model as LanguageModel, req.body.streamed === true));
    const provider = createOpenAICompatible({
      name: 'orq',
      baseURL: routerURL,
      apiKey: emulator.apiKey,
      ...(route === 'fetch' ? { fetch: orqIdentityFetch({ origins: [emulator.url] }) } : {}),
    });
    const base = provider.chatModel('openai/gpt-4o-mini');
    holder.model = route === 'fetch' ? base : wrapLanguageModel({ model: base, middleware: orqIdentityModelMiddleware() });

    for (const streamed of [false, true]) {
      const response = await request(app).post('/ask').set('x-user-id', `ai-${String(streamed)}`).send({ streamed }).expect(200);
      expect(response.body.answer).toBe('This is an emulated response.');
    }
    await request(app).post('/ask').send({ streamed: false }).expect(200);
    expect(llmCalls(emulator).map((call) => [call.streamed, call.identity ?? null])).toEqual([
      [false, { externalId: 'ai-false', source: 'header' }],
      [true, { externalId: 'ai-true', source: 'header' }],
      [false, null],
    ]);
  });
});

describe('orqIdentityModelMiddleware', () => {
  it('keeps an identity header the call set itself', async () => {
    const emulator = await startEmulator();
    const provider = createOpenAICompatible({ name: 'orq', baseURL: `${emulator.url}/v2/router`, apiKey: emulator.apiKey });
    const model = wrapLanguageModel({ model: provider.chatModel('m'), middleware: orqIdentityModelMiddleware() });
    await runWithOrqUser('current', () => ask(model, false, { 'X-ORQ-IDENTITY-ID': 'chosen' }));
    expect(emulator.calls[0]?.identity?.externalId).toBe('chosen');
  });
});

describe('orqIdentityModelMiddleware as the AI SDK sees it', () => {
  it('declares the v3 middleware interface and leaves the params as they are without a user, or with an identity header of their own', async () => {
    const middleware = orqIdentityModelMiddleware();
    expect(middleware.specificationVersion).toBe('v3');
    const params = { prompt: 'hi', headers: { 'x-orq-request-ids': 'r' } };
    expect(await middleware.transformParams({ params })).toBe(params);
    const own = { headers: { 'x-orq-identity-id': undefined } };
    expect(await runWithOrqUser('someone', () => middleware.transformParams({ params: own }))).toBe(own);
    // A header of the same length is another header: the user is added next to it, and the caller's params stay as they were.
    expect(await runWithOrqUser('someone', () => middleware.transformParams({ params }))).toStrictEqual({
      prompt: 'hi', headers: { 'x-orq-request-ids': 'r', 'X-ORQ-IDENTITY-ID': 'someone' },
    });
    expect(params).toStrictEqual({ prompt: 'hi', headers: { 'x-orq-request-ids': 'r' } });
  });
});
