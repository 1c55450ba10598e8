// The attribution example end to end: every call orq received names the calling user, with no identity code in the app's services.
import { Orq } from '@orq-ai/node';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../examples/llm-attribution/app.js';
import { createLlmClients } from '../../examples/llm-attribution/llm.js';
import { startEmulator } from '../helpers.js';

describe('examples/llm-attribution', () => {
  it('attributes a deployment invocation, a router chat completion, an AI SDK stream and queued LangChain calls to their users', async () => {
    const emulator = await startEmulator({ shape: 'sdk' });
    const llm = createLlmClients({ apiKey: emulator.apiKey, serverURL: emulator.url, origins: [emulator.url] });
    const { app, identity } = createApp(new Orq({ apiKey: emulator.apiKey, serverURL: emulator.url }), llm);

    await request(app).post('/support').set('x-user-id', 'alice').send({ question: 'Where is my order?' }).expect(200);
    await request(app).post('/chat').set('x-user-id', 'bob').send({ question: 'Hello' }).expect(200);
    const summary = await request(app).post('/summary').set('x-user-id', 'carol').send({ text: 'A long text' }).expect(200);
    expect(summary.text).toBe('This is an emulated response.');
    await request(app).post('/chat').send({ question: 'Anonymous' }).expect(200);
    // LangChain, several users at once through its queue of 2.
    const drafters = ['dave', 'erin', 'frank', 'grace', 'heidi'];
    await Promise.all(drafters.map((user) => request(app).post('/draft').set('x-user-id', user).send({ message: `from ${user}` }).expect(200)));

    const llmCalls = emulator.calls.filter((call) => call.operation === 'invoke' || call.operation === 'chat');
    expect(llmCalls.slice(0, 4).map((call) => [call.path, call.streamed, call.identity?.externalId])).toEqual([
      ['/v2/deployments/invoke', false, 'alice'],
      ['/v2/router/chat/completions', false, 'bob'],
      ['/v2/router/chat/completions', true, 'carol'],
      ['/v2/router/chat/completions', false, undefined],
    ]);
    const drafts = llmCalls.slice(4).map((call) => {
      const prompt = String((call.body as { messages: Array<{ content: string }> }).messages[0]?.content);
      return [prompt.replace('Draft a reply to: from ', ''), call.identity?.externalId];
    });
    expect(drafts).toHaveLength(drafters.length);
    for (const [asker, tagged] of drafts) expect(tagged).toBe(asker);
    // The gateway attributed the usage: the identities' metrics moved.
    const metrics = await new Orq({ apiKey: emulator.apiKey, serverURL: emulator.url }).identities.retrieve({ id: 'alice', includeMetrics: true });
    expect(metrics.identity.metrics?.totalRequests).toBe(1);
    await identity.close();
  });
});
