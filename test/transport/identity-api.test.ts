// The identity transports against the emulator: our fetch transport (the default path) and the SDK adapter keep one contract.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { OrqApiError } from '../../src/index.js';
import type { IdentityApi } from '../../src/orq-client.js';
import { createFetchIdentityApi } from '../../src/transport/fetch-api.js';
import { createIdentityApi } from '../../src/transport/orq-sdk-client.js';
import type { OrqEmulator } from '../../src/testing/index.js';
import { orqClientFor, shapes, startEmulator, transports, type Transport } from '../helpers.js';

function apiFor(transport: Transport, emulator: OrqEmulator): IdentityApi {
  return transport === 'sdk'
    ? createIdentityApi(orqClientFor(emulator))
    : createFetchIdentityApi({ apiKey: emulator.apiKey, serverURL: emulator.url });
}

const second = { timeoutMs: 1_000 };

async function failure(work: Promise<unknown>): Promise<OrqApiError> {
  try {
    await work;
  } catch (error) {
    return error as OrqApiError;
  }
  throw new Error('expected the call to fail');
}

describe.each(transports)('the %s transport', (transport) => {
  it('tells what every identity answer says of the rate limit, a 404 and a 429 included, until told to stop', async () => {
    const emulator = await startEmulator({ rateLimit: { calls: 2, windowMs: 60_000 } });
    const api = apiFor(transport, emulator);
    const told: (number | undefined)[] = [];
    const stop = api.observeRateLimits((info) => told.push(info.remaining));
    expect(await api.retrieve('nobody', second)).toBeUndefined();
    await api.create({ externalId: 'limited' }, second);
    expect((await failure(api.retrieve('limited', second))).statusCode).toBe(429);
    expect(told).toEqual([1, 0, 0]);
    stop();
    await failure(api.retrieve('limited', second));
    expect(told).toHaveLength(3);
  });

  describe.each(shapes)('on the %s shape', (shape) => {
    it('retrieves (undefined on 404), creates, and updates, snake_case on the wire', async () => {
      const emulator = await startEmulator({ shape });
      const api = apiFor(transport, emulator);
      expect(await api.retrieve('nobody', second)).toBeUndefined();
      const created = await api.create({ externalId: 'api-user', email: 'a@example.com', metadata: { plan: 'pro' } }, second);
      expect(created).toMatchObject({ externalId: 'api-user', email: 'a@example.com', metadata: { plan: 'pro' }, id: expect.stringMatching(/^contact_/) });
      expect(await api.retrieve('api-user', second)).toMatchObject({ id: created.id });
      const updated = await api.update(created, { displayName: 'Api', avatarUrl: 'https://example.com/a.png', tags: ['x'] }, second);
      expect(updated).toMatchObject({ id: created.id, displayName: 'Api', tags: ['x'], email: 'a@example.com' });
      expect(emulator.calls.map((call) => `${call.method} ${call.path} ${call.status}`)).toEqual([
        'GET /v2/identities/nobody 404',
        'POST /v2/identities 201',
        'GET /v2/identities/api-user 200',
        // By orq's id, never the external id (which orq would read as an orq id first).
        `PATCH /v2/identities/${created.id} 200`,
      ]);
      expect(emulator.calls[1]?.body).toEqual({ external_id: 'api-user', email: 'a@example.com', metadata: { plan: 'pro' } });
      expect(emulator.calls[3]?.body).toEqual({ display_name: 'Api', avatar_url: 'https://example.com/a.png', tags: ['x'] });
      for (const call of emulator.calls) expect(call.headers.authorization).toBe(`Bearer ${emulator.apiKey}`);
    });

    it('asks for JSON, and says it sends JSON only when it does', async () => {
      const emulator = await startEmulator({ shape });
      const api = apiFor(transport, emulator);
      await api.retrieve('nobody', second);
      const typed = await api.create({ externalId: 'typed' }, second);
      await api.update(typed, { email: 't@example.com' }, second);
      expect(emulator.calls.map((call) => [call.method, call.headers.accept, call.headers['content-type']])).toEqual([
        ['GET', 'application/json', undefined],
        ['POST', 'application/json', 'application/json'],
        ['PATCH', 'application/json', 'application/json'],
      ]);
    });

    it('asks for metrics only when told to, and reads them', async () => {
      const emulator = await startEmulator({ shape });
      emulator.seed({ externalId: 'spender' });
      emulator.setUsage('spender', { totalCost: 1.5, totalTokens: 300, totalRequests: 4, errorRate: 0.25 });
      const api = apiFor(transport, emulator);
      expect((await api.retrieve('spender', second))?.metrics).toBeUndefined();
      const identity = await api.retrieve('spender', { ...second, includeMetrics: true });
      expect(identity?.metrics).toEqual({ totalCost: 1.5, totalTokens: 300, totalRequests: 4, errorRate: 0.25 });
      expect(emulator.calls.map((call) => call.query)).toEqual([{}, { include_metrics: 'true' }]);
    });
  });

  it('updates by orq id: a user whose external id is another identity\'s orq id changes only its own identity', async () => {
    const emulator = await startEmulator();
    const other = emulator.seed({ externalId: 'someone-else', displayName: 'Someone' });
    const mine = emulator.seed({ externalId: other._id, displayName: 'Mallory' });
    const api = apiFor(transport, emulator);
    const updated = await api.update({ id: mine._id, externalId: mine.external_id }, { displayName: 'Mallory renamed' }, second);
    expect(updated).toMatchObject({ id: mine._id, externalId: other._id, displayName: 'Mallory renamed' });
    expect(emulator.calls.map((call) => `${call.method} ${call.path}`)).toEqual([`PATCH /v2/identities/${mine._id}`]);
    expect(emulator.identities().find((identity) => identity._id === other._id)).toMatchObject({ external_id: 'someone-else', display_name: 'Someone' });
  });

  it('encodes the external id as one path segment', async () => {
    const emulator = await startEmulator();
    const api = apiFor(transport, emulator);
    const odd = 'a/b?c#d %e';
    await api.create({ externalId: odd }, second);
    expect(await api.retrieve(odd, second)).toMatchObject({ externalId: odd });
    expect(emulator.calls[1]?.path).toBe(`/v2/identities/${encodeURIComponent(odd)}`);
  });

  it('classifies failures by their fields: 429 with Retry-After, 401, 403, 5xx with an excerpt, timeout, reset, a 2xx that is no identity', async () => {
    const emulator = await startEmulator();
    const api = apiFor(transport, emulator);
    emulator.inject({ kind: 'status', status: 429, headers: { 'Retry-After': '3' }, times: 1 });
    await expect(api.retrieve('u', second)).rejects.toMatchObject({ name: 'OrqApiError', kind: 'rate-limited', statusCode: 429, retryAfterMs: 3_000 });
    emulator.inject({ kind: 'status', status: 401, times: 1 });
    await expect(api.create({ externalId: 'u' }, second)).rejects.toMatchObject({ kind: 'unauthorized', statusCode: 401, operation: 'create' });
    emulator.inject({ kind: 'status', status: 403, times: 1 });
    await expect(api.retrieve('u', second)).rejects.toMatchObject({ kind: 'unauthorized', statusCode: 403 });
    emulator.inject({ kind: 'status', status: 500, body: { error: 'Failed to fetch metrics' }, times: 1 });
    await expect(api.retrieve('u', second)).rejects.toThrow(/retrieve of user "u" failed with HTTP 500: \{"error":"Failed to fetch metrics"\}/);
    emulator.inject({ kind: 'status', status: 404, times: 1 });
    await expect(api.update({ id: 'contact_u', externalId: 'u' }, { email: 'u@example.com' }, second)).rejects.toMatchObject({
      kind: 'http', statusCode: 404, operation: 'update', externalId: 'u', message: expect.stringMatching(/^orq update of user "u" failed with HTTP 404/),
    });
    emulator.inject({ kind: 'hang', times: 1 });
    await expect(api.retrieve('u', { timeoutMs: 100 })).rejects.toMatchObject({ kind: 'timeout' });
    emulator.inject({ kind: 'reset', times: 1 });
    await expect(api.retrieve('u', second)).rejects.toMatchObject({ kind: 'network' });
    emulator.inject({ kind: 'status', status: 200, body: { unexpected: true }, times: 1 });
    await expect(api.retrieve('u', second)).rejects.toMatchObject({ kind: 'invalid-response' });
  });

  it('a 300 is a redirect left unfollowed, a 400 a plain HTTP failure; a Location is quoted up to 200 characters', async () => {
    const emulator = await startEmulator();
    const api = apiFor(transport, emulator);
    emulator.inject({ kind: 'status', status: 300, times: 1 });
    await expect(api.retrieve('u', second)).rejects.toMatchObject({
      kind: 'http', statusCode: 300,
      message: "orq retrieve of user \"u\" was redirected (HTTP 300); redirects from orq's API are not followed: set `serverURL` to the address orq answers at.",
    });
    const far = `https://elsewhere.example/${'p'.repeat(300)}`;
    emulator.inject({ kind: 'status', status: 300, headers: { location: far }, times: 1 });
    await expect(api.retrieve('u', second)).rejects.toMatchObject({ message: expect.stringContaining(`(HTTP 300 to ${JSON.stringify(far.slice(0, 200))}); `) });
    emulator.inject({ kind: 'status', status: 400, body: { error: 'bad' }, times: 1 });
    await expect(api.retrieve('u', second)).rejects.toMatchObject({ kind: 'http', statusCode: 400, message: 'orq retrieve of user "u" failed with HTTP 400: {"error":"bad"}.' });
  });

  it('an id the runtime cannot encode is not-sent: nothing reached orq', async () => {
    const emulator = await startEmulator();
    const api = apiFor(transport, emulator);
    for (const call of [() => api.retrieve('\ud800', second), () => api.update({ id: '\ud800', externalId: '\ud800' }, { email: 'e@example.com' }, second)]) {
      await expect(call()).rejects.toMatchObject({ name: 'OrqApiError', kind: 'not-sent', isOutage: false, message: expect.stringMatching(/could not be sent \(URIError/) });
    }
    expect(emulator.count()).toBe(0);
  });

  it('an answer whose headers are too large to read was sent: a network failure, never not-sent', async () => {
    const emulator = await startEmulator();
    const api = apiFor(transport, emulator);
    // Past the 16 KiB of headers Node's fetch reads: the runtime's error names HEADERS, yet the request left the process.
    emulator.inject({ kind: 'status', status: 500, headers: { 'x-padding': 'a'.repeat(20_000) }, times: 1 });
    await expect(api.retrieve('u', second)).rejects.toMatchObject({ name: 'OrqApiError', kind: 'network', isOutage: true });
    expect(emulator.count()).toBe(1);
  });

  it('reports a refused connection as a network failure', async () => {
    const emulator = await startEmulator();
    const api = apiFor(transport, emulator);
    await emulator.close();
    await expect(api.retrieve('u', second)).rejects.toMatchObject({ kind: 'network', message: expect.stringMatching(/could not reach orq/) });
  });
});

// What only our own transport promises: answers no emulator route gives, so a bare HTTP server stands in for orq.
describe('the fetch transport on answers orq should not give', () => {
  const servers: Array<() => void> = [];
  afterEach(() => servers.splice(0).forEach((close) => close()));

  async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; requests: string[] }> {
    const requests: string[] = [];
    const server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      handler(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(() => server.close());
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
  }

  it.each([
    ['invalid JSON', 'application/json', '{"_id": "contact_1", ', /HTTP 200 and a body that is not valid JSON/],
    ['an empty body', 'application/json', '', /HTTP 200 and an empty body/],
    ['an HTML page', 'text/html', '<html>proxy login</html>', /HTTP 200 and a body that is not JSON \(content type "text\/html"\)/],
    ['no content type and no JSON', undefined, 'OK', /HTTP 200 and a body that is not JSON \(content type none\)/],
    ['a blank body', 'application/json', ' \n ', /^orq answered the retrieve of user "u" with HTTP 200 and an empty body, not an identity\.$/],
    ['JSON of another shape', 'application/json', '{"unexpected":true}', /^orq answered the retrieve of user "u" with HTTP 200 and JSON of another shape, not an identity\.$/],
  ])('a 200 with %s is an invalid response, not a network failure', async (_what, type, body, message) => {
    const orq = await serve((_req, res) => {
      res.writeHead(200, type === undefined ? {} : { 'content-type': type });
      res.end(body);
    });
    const api = createFetchIdentityApi({ apiKey: 'k', serverURL: orq.url });
    const error = await failure(api.retrieve('u', second));
    expect(error).toMatchObject({ name: 'OrqApiError', kind: 'invalid-response', statusCode: 200, isOutage: false });
    expect(error.message).toMatch(message);
  });

  it.each([301, 302, 307, 308])('follows no redirect (HTTP %i): one request, reported as an HTTP error that names serverURL', async (status) => {
    const orq = await serve((req, res) => {
      res.writeHead(status, { location: `/elsewhere${req.url ?? ''}` });
      res.end();
    });
    const api = createFetchIdentityApi({ apiKey: 'k', serverURL: orq.url });
    await expect(api.retrieve('u', second)).rejects.toMatchObject({
      kind: 'http', statusCode: status, message: expect.stringMatching(/was redirected \(HTTP 30\d to "\/elsewhere\/v2\/identities\/u"\); redirects from orq's API are not followed: set `serverURL`/),
    });
    expect(orq.requests).toEqual(['GET /v2/identities/u']);
  });

  it('a 304, which has no body, is reported as a redirect, not as a failure to read it', async () => {
    const orq = await serve((_req, res) => {
      res.writeHead(304);
      res.end();
    });
    const api = createFetchIdentityApi({ apiKey: 'k', serverURL: orq.url });
    await expect(api.retrieve('u', second)).rejects.toMatchObject({ kind: 'http', statusCode: 304, message: expect.stringMatching(/was redirected \(HTTP 304\); /) });
  });

  it('quotes an error body whose characters arrive split across chunks intact', async () => {
    const orq = await serve((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      const bytes = Buffer.from('café au lait', 'utf8');
      // The two bytes of "é" go in different chunks.
      res.write(bytes.subarray(0, 4));
      setTimeout(() => res.end(bytes.subarray(4)), 30);
    });
    const api = createFetchIdentityApi({ apiKey: 'k', serverURL: orq.url });
    await expect(api.retrieve('u', second)).rejects.toMatchObject({ message: 'orq retrieve of user "u" failed with HTTP 500: café au lait.' });
  });

  it('marks an error body cut inside a character, and names a failure that has no code by its message', async () => {
    const orq = await serve((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      // "ab" and the first of the two bytes of "é".
      res.end(Buffer.from([0x61, 0x62, 0xc3]));
    });
    await expect(createFetchIdentityApi({ apiKey: 'k', serverURL: orq.url }).retrieve('u', second)).rejects.toMatchObject({
      message: 'orq retrieve of user "u" failed with HTTP 500: ab\ufffd.',
    });
    const unsupported = await failure(createFetchIdentityApi({ apiKey: 'k', serverURL: 'ftp://127.0.0.1:9' }).retrieve('u', second));
    expect(unsupported).toMatchObject({ kind: 'network', message: 'orq retrieve of user "u" could not reach orq (ConnectionError: fetch failed: unknown scheme).' });
  });

  it('names what a refused connection and a timeout were, in the message and the cause', async () => {
    const closed = await serve(() => undefined);
    servers.splice(0).forEach((close) => close());
    await new Promise((resolve) => setTimeout(resolve, 20));
    const refused = await failure(createFetchIdentityApi({ apiKey: 'k', serverURL: closed.url }).retrieve('u', second));
    expect(refused.message).toBe('orq retrieve of user "u" could not reach orq (ConnectionError: fetch failed: ECONNREFUSED).');
    const cause = refused.cause as Error & { code?: unknown };
    expect([cause.name, cause.message, (cause.cause as { code?: unknown }).code]).toEqual(['ConnectionError', 'fetch failed: ECONNREFUSED', 'ECONNREFUSED']);
    const silent = await serve(() => undefined);
    const late = await failure(createFetchIdentityApi({ apiKey: 'k', serverURL: silent.url }).retrieve('u', { timeoutMs: 100 }));
    expect(late).toMatchObject({ kind: 'timeout', message: 'orq retrieve of user "u" got no answer in time.' });
    expect(late.cause).toMatchObject({ name: 'TimeoutError', message: 'The operation was aborted due to timeout', code: 23 });
  });

  it('keeps the API key and any bearer token out of messages and causes when an error body echoes them', async () => {
    const apiKey = 'sk-orq-very-secret-key';
    const orq = await serve((req, res) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`bad gateway; you sent authorization=${req.headers.authorization ?? ''} key ${apiKey} and Bearer other-token`);
    });
    const api = createFetchIdentityApi({ apiKey, serverURL: orq.url });
    const error = await failure(api.retrieve('u', second));
    expect(error).toMatchObject({ kind: 'http', statusCode: 502 });
    const seen = [error.message, inspect(error, { depth: 10 }), JSON.stringify(error), String(error.stack)].join('\n');
    expect(seen).toMatch(/bad gateway/);
    expect(seen).not.toContain(apiKey);
    expect(seen).not.toMatch(/Bearer (?!\[redacted\])/);
  });

  it('reads no more than a few kilobytes of an error body: the rest is never received', async () => {
    let sent = 0;
    let finished: boolean | undefined;
    const orq = await serve((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      const chunk = 'x'.repeat(65_536);
      // 8 MB at most, written as the client takes it; the client hanging up ends it early.
      const write = (): void => {
        while (sent < 8_000_000 && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', write);
        }
        res.end();
      };
      res.on('close', () => (finished = res.writableFinished));
      write();
    });
    const api = createFetchIdentityApi({ apiKey: 'k', serverURL: orq.url });
    const error = await failure(api.retrieve('u', second));
    expect(error).toMatchObject({ kind: 'http', statusCode: 500, message: expect.stringMatching(/HTTP 500: x{200}…\.$/) });
    // Only an excerpt travels on: the cause is a redacted copy without the body.
    expect(inspect(error, { depth: 5 }).length).toBeLessThan(4_096);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(finished).toBe(false);
    expect(sent).toBeLessThan(8_000_000);
  });

  it('an error body that stops arriving once it has filled the few kilobytes read is quoted at once, not waited for', async () => {
    const orq = await serve((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      // Exactly the 4 096 characters read of an error body, then nothing more, and no end.
      res.write('y'.repeat(4_096));
    });
    const api = createFetchIdentityApi({ apiKey: 'k', serverURL: orq.url });
    await expect(api.retrieve('u', second)).rejects.toMatchObject({ kind: 'http', statusCode: 503, message: expect.stringMatching(/HTTP 503: y{200}…\.$/) });
  });

  it("an HTTP failure's cause says what orq answered, as the SDK's errors do, without the body", async () => {
    const orq = await serve((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('down for maintenance');
    });
    const error = await failure(createFetchIdentityApi({ apiKey: 'k', serverURL: orq.url }).retrieve('u', second));
    expect(error).toMatchObject({ kind: 'http', statusCode: 503, message: 'orq retrieve of user "u" failed with HTTP 503: down for maintenance.' });
    expect(error.cause).toMatchObject({ name: 'OrqHttpError', message: 'HTTP 503', statusCode: 503 });
    expect(inspect(error.cause)).not.toContain('maintenance');
  });

  it('the per-call deadline also covers a body that stops arriving', async () => {
    const orq = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"_id": "contact_1", ');
    });
    const api = createFetchIdentityApi({ apiKey: 'k', serverURL: orq.url });
    const started = Date.now();
    await expect(api.retrieve('u', { timeoutMs: 150 })).rejects.toMatchObject({ kind: 'timeout' });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('reads a JSON identity served without a content type, as the SDK adapter does', async () => {
    const orq = await serve((_req, res) => {
      res.writeHead(200);
      res.end(JSON.stringify({ _id: 'contact_1', external_id: 'u', display_name: null }));
    });
    const api = createFetchIdentityApi({ apiKey: 'k', serverURL: orq.url });
    expect(await api.retrieve('u', second)).toEqual({ id: 'contact_1', externalId: 'u' });
  });

  it('joins a serverURL with a path prefix and a trailing slash', async () => {
    const orq = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ identity: { _id: 'contact_1', external_id: 'u' } }));
    });
    for (const suffix of ['/orq/', '/orq//']) {
      const api = createFetchIdentityApi({ apiKey: 'k', serverURL: `${orq.url}${suffix}` });
      expect(await api.retrieve('u', second)).toEqual({ id: 'contact_1', externalId: 'u' });
    }
    expect(orq.requests).toEqual(['GET /orq/v2/identities/u', 'GET /orq/v2/identities/u']);
  });
});
