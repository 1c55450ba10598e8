// The attribution example end to end: the bodies orq received carry the calling user's identity.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../examples/llm-attribution/app.js';
import { orqClientFor, startEmulator } from '../helpers.js';

describe('examples/llm-attribution', () => {
  it('attaches the identity to a deployment invocation and a router chat completion', async () => {
    const emulator = await startEmulator({ shape: 'sdk' });
    const { app, identity } = createApp(orqClientFor(emulator));

    await request(app).post('/support').set('x-user-id', 'alice').send({ question: 'Where is my order?' }).expect(200);
    await request(app).post('/chat').set('x-user-id', 'bob').send({ question: 'Hello' }).expect(200);
    await request(app).post('/chat').send({ question: 'Anonymous' }).expect(200);

    const invoke = emulator.calls.find((call) => call.operation === 'invoke');
    expect(invoke?.body).toMatchObject({ key: 'support-bot', identity: { id: 'alice' } });
    const chats = emulator.calls.filter((call) => call.operation === 'chat');
    expect(chats[0]?.body).toMatchObject({ orq: { identity: { id: 'bob' } } });
    expect(JSON.stringify(chats[1]?.body)).not.toContain('identity');
    // The gateway attributed the usage: the identities' metrics moved.
    const metrics = await orqClientFor(emulator).identities.retrieve({ id: 'alice', includeMetrics: true });
    expect(metrics.identity.metrics?.totalRequests).toBe(1);
    await identity.close();
  });
});
