// LangChain's ChatOpenAI against the emulated router: attributed through orqIdentityFetch, and through orqIdentityCallOptions where its queue loses the context.
import { ChatOpenAI } from '@langchain/openai';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { orqIdentityCallOptions, orqIdentityFetch, runWithOrqUser } from '../../src/index.js';
import { attributionApp, llmCalls } from './app.js';

async function langchainApp(maxConcurrency: number, withHelper: boolean) {
  const holder: { model?: ChatOpenAI } = {};
  const setup = await attributionApp(async (req) => {
    const model = holder.model as ChatOpenAI;
    const callOptions = withHelper ? orqIdentityCallOptions() : {};
    // The prompt names the user, so each call orq received can be matched with the request that made it.
    const prompt = `asked by ${req.header('x-user-id') ?? 'nobody'}`;
    if (req.body.streamed === true) {
      let text = '';
      for await (const chunk of await model.stream(prompt, callOptions)) text += String(chunk.content);
      return text;
    }
    return String((await model.invoke(prompt, callOptions)).content);
  });
  holder.model = new ChatOpenAI({
    model: 'openai/gpt-4o-mini',
    apiKey: setup.emulator.apiKey,
    maxConcurrency,
    maxRetries: 0,
    configuration: { baseURL: setup.routerURL, fetch: orqIdentityFetch({ origins: [setup.emulator.url] }) },
  });
  return setup;
}

describe('LangChain ChatOpenAI', () => {
  it('with orqIdentityFetch: invoke and stream attributed to the request\'s user', async () => {
    const { app, emulator } = await langchainApp(4, false);
    for (const streamed of [false, true]) {
      expect((await request(app).post('/ask').set('x-user-id', `lc-${String(streamed)}`).send({ streamed }).expect(200)).body.answer).toBe('This is an emulated response.');
    }
    expect(llmCalls(emulator).map((call) => [call.streamed, call.identity?.externalId])).toEqual([[false, 'lc-false'], [true, 'lc-true']]);
  });

  /** For each call orq received: the user whose request made it, and the user it was attributed to. */
  function askedVersusTagged(calls: ReturnType<typeof llmCalls>): Array<[string, string | undefined]> {
    return calls.map((call) => {
      const prompt = (call.body as { messages: Array<{ content: string }> }).messages[0]?.content ?? '';
      return [prompt.replace('asked by ', ''), call.identity?.externalId];
    });
  }

  async function interleaved(withHelper: boolean) {
    const { app, emulator } = await langchainApp(1, withHelper);
    emulator.setLatency(5);
    const users = Array.from({ length: 40 }, (_, index) => `queued-${index % 20}`);
    const answers = await Promise.all(users.map((user, index) => request(app).post('/ask').set('x-user-id', user).send({ streamed: index % 2 === 0 })));
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    expect(llmCalls(emulator)).toHaveLength(40);
    return askedVersusTagged(llmCalls(emulator));
  }

  it('with maxConcurrency: 1 and orqIdentityCallOptions: 40 interleaved requests of 20 users, every call tagged with its own user', async () => {
    const pairs = await interleaved(true);
    expect(pairs.filter(([asked, tagged]) => asked !== tagged)).toEqual([]);
  });

  it('with maxConcurrency: 1 and the fetch alone, the queue tags calls with other requests\' users: the hazard the helper exists for', async () => {
    const pairs = await interleaved(false);
    expect(pairs.filter(([asked, tagged]) => asked !== tagged).length).toBeGreaterThan(0);
  });

  it('orqIdentityCallOptions extends the caller\'s options and keeps an identity they named', () => {
    expect(orqIdentityCallOptions()).toEqual({});
    runWithOrqUser('helper-user', () => {
      const header = { 'X-ORQ-IDENTITY-ID': 'helper-user' };
      expect(orqIdentityCallOptions()).toEqual({ options: { headers: header }, headers: header });
      expect(orqIdentityCallOptions({ tags: ['a'], options: { timeout: 5 } })).toEqual({ tags: ['a'], options: { timeout: 5, headers: header }, headers: header });
      const own = { options: { headers: { 'x-orq-identity-id': 'mine' } } };
      expect(orqIdentityCallOptions(own)).toBe(own);
      const ownTop = { headers: { 'X-Orq-Identity-Id': 'mine' } };
      expect(orqIdentityCallOptions(ownTop)).toBe(ownTop);
    });
  });
});
