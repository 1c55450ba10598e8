// The emulated LLM gateway: /v2 and /v3 router routes and deployments, JSON and SSE answers, and who each call is attributed to.
import { Orq } from '@orq-ai/node';
import { afterEach, describe, expect, it } from 'vitest';
import { EMULATED_CALL_USAGE, startOrqEmulator, type OrqEmulator } from '../../src/testing/index.js';

const running: OrqEmulator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((emulator) => emulator.close()));
});

async function start(): Promise<OrqEmulator> {
  const emulator = await startOrqEmulator({ shape: 'sdk' });
  running.push(emulator);
  return emulator;
}

function post(emulator: OrqEmulator, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${emulator.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${emulator.apiKey}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

/** The `data:` lines of an SSE body, parsed where they are JSON. */
async function events(response: Response): Promise<unknown[]> {
  const text = await response.text();
  return text.split('\n').filter((line) => line.startsWith('data: ')).map((line) => {
    const data = line.slice('data: '.length);
    return data === '[DONE]' ? data : (JSON.parse(data) as unknown);
  });
}

const chat = { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

describe('the emulated router', () => {
  it.each(['/v2/router', '/v3/router'])('serves chat completions and responses under %s', async (base) => {
    const emulator = await start();
    const completion = await post(emulator, `${base}/chat/completions`, chat);
    expect(await completion.json()).toMatchObject({ object: 'chat.completion', choices: [{ message: { role: 'assistant', content: expect.any(String) } }] });
    const response = await post(emulator, `${base}/responses`, { model: 'openai/gpt-4o-mini', input: 'hi' });
    expect(await response.json()).toMatchObject({ object: 'response', status: 'completed', output: [{ type: 'message' }] });
    expect(emulator.calls.map((call) => call.operation)).toEqual(['chat', 'responses']);
  });

  it('streams chat completions as SSE chunks ending in [DONE], with the usage chunk when asked for', async () => {
    const emulator = await start();
    const response = await post(emulator, '/v2/router/chat/completions', { ...chat, stream: true, stream_options: { include_usage: true } });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const chunks = await events(response);
    expect(chunks.at(-1)).toBe('[DONE]');
    expect(chunks.at(-2)).toMatchObject({ choices: [], usage: { prompt_tokens: EMULATED_CALL_USAGE.promptTokens } });
    const text = chunks.map((chunk) => (chunk as { choices?: Array<{ delta?: { content?: string } }> }).choices?.[0]?.delta?.content ?? '').join('');
    expect(text).toBe('This is an emulated response.');
    expect(emulator.calls[0]).toMatchObject({ operation: 'chat', streamed: true, status: 200 });
  });

  it('records the identity however it came, the body winning over the header as at the gateway', async () => {
    const emulator = await start();
    await post(emulator, '/v2/router/chat/completions', chat, { 'X-ORQ-IDENTITY-ID': 'by-header' });
    await post(emulator, '/v2/router/chat/completions', { ...chat, orq: { identity: { id: 'by-orq-field' } } }, { 'x-orq-identity-id': 'loses' });
    await post(emulator, '/v3/router/responses', { model: 'm', input: 'hi', identity: { id: 'by-body', display_name: 'Body' } }, { 'x-orq-identity-id': 'loses' });
    await post(emulator, '/v2/router/chat/completions', chat, { 'x-orq-identity-id': 'a/'.repeat(70) });
    expect(emulator.calls.map((call) => call.identity)).toEqual([
      { externalId: 'by-header', source: 'header' },
      { externalId: 'by-orq-field', source: 'orq-field', sent: { id: 'by-orq-field' } },
      { externalId: 'by-body', source: 'body', sent: { id: 'by-body', display_name: 'Body' } },
      undefined,
    ]);
    // A body identity upserts; the header only tags (its usage counts, no identity is created).
    expect(emulator.identities().map((identity) => [identity.external_id, identity.display_name])).toEqual([
      ['by-orq-field', null],
      ['by-body', 'Body'],
    ]);
  });

  it('speaks what @orq-ai/node parses: deployments.stream, router chat stream, responses.create', async () => {
    const emulator = await start();
    const orq = new Orq({ apiKey: emulator.apiKey, serverURL: emulator.url });
    const stream = await orq.deployments.stream({ key: 'bot', identity: { id: 'streamer' } });
    const parts: string[] = [];
    for await (const event of stream) {
      const message = event.data?.choices[0]?.message;
      if (message !== undefined && 'content' in message && typeof message.content === 'string') parts.push(message.content);
    }
    expect(parts.join('')).toBe('This is an emulated response.');

    const chatStream = await orq.router.chat.completions.create({ ...chat, messages: [{ role: 'user', content: 'hi' }], stream: true });
    let chunks = 0;
    for await (const chunk of chatStream as AsyncIterable<unknown>) if (chunk !== undefined) chunks++;
    expect(chunks).toBeGreaterThan(2);

    const response = await orq.responses.create({ model: 'openai/gpt-4o-mini', input: 'hi', identity: { id: 'responder' } });
    expect(response).toMatchObject({ status: 'completed', usage: { inputTokens: EMULATED_CALL_USAGE.promptTokens } });
    expect(emulator.calls.map((call) => [call.path, call.identity?.externalId, call.streamed])).toEqual([
      ['/v2/deployments/stream', 'streamer', true],
      ['/v2/router/chat/completions', undefined, true],
      ['/v3/router/responses', 'responder', false],
    ]);
  });
});
