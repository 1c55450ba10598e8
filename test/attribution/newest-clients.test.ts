// The newest majors of the clients (openai 7, ai 7 + @ai-sdk/openai-compatible 3, @langchain/openai 1.6) declare Node >= 22:
// they are installed under aliases and run on the Node 22 and 24 legs of CI, the same way as the Node 20 majors.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { orqIdentityCallOptions, orqIdentityFetch, orqIdentityModelMiddleware } from '../../src/index.js';
import { attributionApp, llmCalls } from './app.js';

const nodeMajor = Number(process.versions.node.split('.')[0]);

describe.skipIf(nodeMajor < 22)('the newest client majors (Node >= 22)', () => {
  it('openai 7 with orqIdentityFetch: plain and streamed chat completions, and responses', async () => {
    const { default: OpenAI } = await import('openai-7');
    const holder: { client?: InstanceType<typeof OpenAI> } = {};
    const { app, emulator, routerURL } = await attributionApp(async (req) => {
      const openai = holder.client as InstanceType<typeof OpenAI>;
      if (req.body.mode === 'stream') {
        let text = '';
        for await (const chunk of await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true })) {
          text += chunk.choices[0]?.delta.content ?? '';
        }
        return text;
      }
      if (req.body.mode === 'responses') return (await openai.responses.create({ model: 'm', input: 'hi' })).output_text;
      return (await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })).choices[0]?.message.content;
    });
    holder.client = new OpenAI({ apiKey: emulator.apiKey, baseURL: routerURL, fetch: orqIdentityFetch({ origins: [emulator.url] }), maxRetries: 0 });
    for (const mode of ['plain', 'stream', 'responses']) {
      expect((await request(app).post('/ask').set('x-user-id', `seven-${mode}`).send({ mode }).expect(200)).body.answer).toBe('This is an emulated response.');
    }
    expect(llmCalls(emulator).map((call) => call.identity?.externalId)).toEqual(['seven-plain', 'seven-stream', 'seven-responses']);
  });

  it('ai 7 + @ai-sdk/openai-compatible 3: generateText through the fetch, streamText through the model middleware', async () => {
    const { generateText, streamText, wrapLanguageModel } = await import('ai-7');
    const { createOpenAICompatible } = await import('openai-compatible-3');
    const holder: { viaFetch?: Parameters<typeof generateText>[0]['model']; viaMiddleware?: Parameters<typeof streamText>[0]['model'] } = {};
    const { app, emulator, routerURL } = await attributionApp(async (req) => {
      if (req.body.streamed !== true) return (await generateText({ model: holder.viaFetch as never, prompt: 'hi', maxRetries: 0 })).text;
      let text = '';
      for await (const part of streamText({ model: holder.viaMiddleware as never, prompt: 'hi', maxRetries: 0 }).textStream) text += part;
      return text;
    });
    const withFetch = createOpenAICompatible({ name: 'orq', baseURL: routerURL, apiKey: emulator.apiKey, fetch: orqIdentityFetch({ origins: [emulator.url] }) });
    const plain = createOpenAICompatible({ name: 'orq', baseURL: routerURL, apiKey: emulator.apiKey });
    holder.viaFetch = withFetch.chatModel('m');
    holder.viaMiddleware = wrapLanguageModel({ model: plain.chatModel('m'), middleware: orqIdentityModelMiddleware() });
    for (const streamed of [false, true]) {
      expect((await request(app).post('/ask').set('x-user-id', `ai7-${String(streamed)}`).send({ streamed }).expect(200)).body.answer).toBe('This is an emulated response.');
    }
    expect(llmCalls(emulator).map((call) => [call.streamed, call.identity?.externalId])).toEqual([[false, 'ai7-false'], [true, 'ai7-true']]);
  });

  it('@langchain/openai 1.6 with orqIdentityFetch and orqIdentityCallOptions: invoke and stream', async () => {
    const { ChatOpenAI } = await import('langchain-openai-1-6');
    const holder: { model?: InstanceType<typeof ChatOpenAI> } = {};
    const { app, emulator, routerURL } = await attributionApp(async (req) => {
      const model = holder.model as InstanceType<typeof ChatOpenAI>;
      if (req.body.streamed !== true) return String((await model.invoke('hi', orqIdentityCallOptions())).content);
      let text = '';
      for await (const chunk of await model.stream('hi', orqIdentityCallOptions())) text += String(chunk.content);
      return text;
    });
    holder.model = new ChatOpenAI({ model: 'm', apiKey: emulator.apiKey, maxRetries: 0, maxConcurrency: 1, configuration: { baseURL: routerURL, fetch: orqIdentityFetch({ origins: [emulator.url] }) } });
    for (const streamed of [false, true]) {
      expect((await request(app).post('/ask').set('x-user-id', `lc16-${String(streamed)}`).send({ streamed }).expect(200)).body.answer).toBe('This is an emulated response.');
    }
    expect(llmCalls(emulator).map((call) => [call.streamed, call.identity?.externalId])).toEqual([[false, 'lc16-false'], [true, 'lc16-true']]);
  });
});
