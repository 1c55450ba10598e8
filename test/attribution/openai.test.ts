// The official openai client pointed at orq's router: orqIdentityFetch attributes every call of a request to its user, with no per-call code.
import OpenAI from 'openai';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { orqIdentityFetch } from '../../src/index.js';
import { startEmulator } from '../helpers.js';
import { attributionApp, llmCalls } from './app.js';

function openaiFor(baseURL: string, apiKey: string, origins: string[]): OpenAI {
  return new OpenAI({ apiKey, baseURL, fetch: orqIdentityFetch({ origins }), maxRetries: 0 });
}

describe('openai with orqIdentityFetch', () => {
  it('tags chat completions (plain and streamed) and responses with the request\'s user, and leaves answers untouched', async () => {
    let client: OpenAI | undefined;
    const { app, emulator, routerURL } = await attributionApp(async (req) => {
      const openai = client as OpenAI;
      const mode = String(req.body.mode);
      if (mode === 'plain') {
        const completion = await openai.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
        return completion.choices[0]?.message.content;
      }
      if (mode === 'stream') {
        const stream = await openai.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
        let text = '';
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
        return text;
      }
      const response = await openai.responses.create({ model: 'openai/gpt-4o-mini', input: 'hi' });
      return response.output_text;
    });
    const emulator3 = `${emulator.url}/v3/router`;
    client = openaiFor(routerURL, emulator.apiKey, [emulator.url]);
    const responsesClient = openaiFor(emulator3, emulator.apiKey, [emulator.url]);

    for (const mode of ['plain', 'stream']) {
      const response = await request(app).post('/ask').set('x-user-id', `user-${mode}`).send({ mode }).expect(200);
      expect(response.body.answer).toBe('This is an emulated response.');
    }
    client = responsesClient;
    expect((await request(app).post('/ask').set('x-user-id', 'user-responses').send({ mode: 'responses' }).expect(200)).body.answer).toBe('This is an emulated response.');
    await request(app).post('/ask').send({ mode: 'responses' }).expect(200);

    expect(llmCalls(emulator).map((call) => [call.path, call.streamed, call.identity ?? null])).toEqual([
      ['/v2/router/chat/completions', false, { externalId: 'user-plain', source: 'header' }],
      ['/v2/router/chat/completions', true, { externalId: 'user-stream', source: 'header' }],
      ['/v3/router/responses', false, { externalId: 'user-responses', source: 'header' }],
      ['/v3/router/responses', false, null],
    ]);
    // Only the external id travels in a header: never a name or an email.
    const sent = llmCalls(emulator).map((call) => call.headers['x-orq-identity-id']);
    expect(sent).toEqual(['user-plain', 'user-stream', 'user-responses', undefined]);
  });

  it('never replaces an identity header the caller set on the call', async () => {
    const holder: { client?: OpenAI } = {};
    const { app, emulator, routerURL } = await attributionApp(async () => {
      const completion = await (holder.client as OpenAI).chat.completions.create(
        { model: 'm', messages: [{ role: 'user', content: 'hi' }] },
        { headers: { 'x-orq-identity-id': 'chosen-by-caller' } },
      );
      return completion.id;
    });
    holder.client = openaiFor(routerURL, emulator.apiKey, [emulator.url]);
    await request(app).post('/ask').set('x-user-id', 'request-user').send({}).expect(200);
    expect(llmCalls(emulator)[0]?.identity).toEqual({ externalId: 'chosen-by-caller', source: 'header' });
  });

  it('sends nothing to a host that is not orq\'s, even while serving a user', async () => {
    const elsewhere = await startEmulator();
    const holder: { client?: OpenAI } = {};
    const { app, emulator } = await attributionApp(async () => (await (holder.client as OpenAI).chat.completions.create({ model: 'm', messages: [] })).id);
    // The fetch knows only the first emulator as orq; the client talks to the other one.
    holder.client = openaiFor(`${elsewhere.url}/v2/router`, elsewhere.apiKey, [emulator.url]);
    await request(app).post('/ask').set('x-user-id', 'secret-user').send({}).expect(200);
    expect(elsewhere.calls).toHaveLength(1);
    expect(JSON.stringify(elsewhere.calls[0]?.headers)).not.toContain('secret-user');
  });
});
