// Wire shapes and error reading, through the real SDK where the SDK is involved.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Orq } from '@orq-ai/node';
import { HTTPClient } from '@orq-ai/node/lib/http.js';
import { afterEach, describe, expect, it } from 'vitest';
import { identityFromWire, parseRetryAfter, redactorFor } from '../src/orq-client.js';
import { createFetchIdentityApi } from '../src/transport/fetch-api.js';
import { createIdentityApi } from '../src/transport/orq-sdk-client.js';
import type { OrqApiError, OrqClient } from '../src/index.js';
import { orqClientFor, shapes, startEmulator } from './helpers.js';

async function failureOf(work: Promise<unknown>): Promise<OrqApiError> {
  try {
    await work;
  } catch (error) {
    return error as OrqApiError;
  }
  throw new Error('expected the call to fail');
}

/** The causes under an error, outermost first: name, then code and statusCode where a cause has them. */
function chainOf(error: Error): string[] {
  const chain: string[] = [];
  for (let cause = error.cause as (Error & { code?: unknown; statusCode?: unknown }) | undefined; cause !== undefined; cause = cause.cause as typeof cause) {
    const fields = [cause.name];
    if (Object.hasOwn(cause, 'code')) fields.push(`code ${String(cause.code)}`);
    if (Object.hasOwn(cause, 'statusCode')) fields.push(`status ${String(cause.statusCode)}`);
    chain.push(fields.join(', '));
  }
  return chain;
}

/** An SDK client whose every request fails the way `fail` says, before or while reading the answer. */
function failingClient(fail: () => Promise<Response>): Orq {
  return new Orq({ apiKey: 'test-key', serverURL: 'http://127.0.0.1:9', httpClient: new HTTPClient({ fetcher: fail }) });
}

describe('identityFromWire', () => {
  it('reads the documented bare shape with nulls, dropping the nulls', () => {
    expect(identityFromWire({ _id: 'contact_1', external_id: 'u', display_name: null, email: null, avatar_url: null, tags: [], metadata: {} }))
      .toEqual({ id: 'contact_1', externalId: 'u', tags: [], metadata: {} });
  });

  it('reads the SDK wrapped shape and the create envelope', () => {
    const identity = { _id: 'contact_2', external_id: 'v', workspace_id: 'w', created: 'c', updated: 'u' };
    const expected = { id: 'contact_2', externalId: 'v', workspaceId: 'w', created: 'c', updated: 'u' };
    expect(identityFromWire({ identity })).toEqual(expected);
    expect(identityFromWire({ Headers: {}, Result: { identity } })).toEqual(expected);
    expect(identityFromWire({ headers: {}, result: { identity: { id: 'contact_2', externalId: 'v', workspaceId: 'w', created: 'c', updated: 'u' } } })).toEqual(expected);
  });

  it('reads the camelCase shape field by field, snake_case first when both are present', () => {
    expect(identityFromWire({ id: 'contact_3', externalId: 'w', workspaceId: 'ws', displayName: 'W', email: 'w@example.com', avatarUrl: 'https://example.com/w.png' }))
      .toStrictEqual({ id: 'contact_3', externalId: 'w', workspaceId: 'ws', displayName: 'W', email: 'w@example.com', avatarUrl: 'https://example.com/w.png' });
    expect(identityFromWire({ _id: 'contact_4', id: 'other', external_id: 'x', externalId: 'other', display_name: 'Snake', displayName: 'Camel' }))
      .toStrictEqual({ id: 'contact_4', externalId: 'x', displayName: 'Snake' });
  });

  it('keeps only well-typed fields: string tags, object metadata, string dates, complete metrics', () => {
    expect(identityFromWire({
      _id: 'c', external_id: 'u', workspace_id: 1, display_name: 2, email: 3, avatar_url: 4,
      tags: ['a', 1, null, 'b'], metadata: ['not', 'an', 'object'], created: 5, updated: null,
      metrics: { total_cost: 1, total_tokens: 2, total_requests: 3 },
    })).toStrictEqual({ id: 'c', externalId: 'u', tags: ['a', 'b'] });
    expect(identityFromWire({ _id: 'c', external_id: 'u', tags: 'a', metadata: 'x', metrics: 'x' })).toStrictEqual({ id: 'c', externalId: 'u' });
    for (const missing of ['totalCost', 'totalTokens', 'totalRequests', 'errorRate']) {
      const metrics: Record<string, unknown> = { totalCost: 1, totalTokens: 2, totalRequests: 3, errorRate: 0 };
      metrics[missing] = String(metrics[missing]);
      expect(identityFromWire({ _id: 'c', external_id: 'u', metrics })?.metrics).toBeUndefined();
    }
    expect(identityFromWire({ _id: 'c', external_id: 'u', metrics: { totalCost: 1, totalTokens: 2, totalRequests: 3, errorRate: 0 } })?.metrics)
      .toStrictEqual({ totalCost: 1, totalTokens: 2, totalRequests: 3, errorRate: 0 });
  });

  it('unwraps an envelope only when it is one: a bare identity with a field named result or identity stays itself', () => {
    expect(identityFromWire({ _id: 'c', external_id: 'u', result: { identity: { _id: 'other', external_id: 'other' } } }))
      .toStrictEqual({ id: 'c', externalId: 'u' });
    expect(identityFromWire({ headers: {}, result: 'not an object' })).toBeUndefined();
    expect(identityFromWire({ headers: {}, result: { _id: 'c', external_id: 'u' } })).toStrictEqual({ id: 'c', externalId: 'u' });
    expect(identityFromWire({ identity: 'not an object', _id: 'c', external_id: 'u' })).toStrictEqual({ id: 'c', externalId: 'u' });
    expect(identityFromWire([{ _id: 'c', external_id: 'u' }])).toBeUndefined();
    expect(identityFromWire({ _id: 'c' })).toBeUndefined();
    expect(identityFromWire({ external_id: 'u' })).toBeUndefined();
  });

  it('refuses what is not an identity', () => {
    expect(identityFromWire({ error: 'nope' })).toBeUndefined();
    expect(identityFromWire(null)).toBeUndefined();
    expect(identityFromWire({ _id: 1, external_id: 'u' })).toBeUndefined();
  });

  it('refuses an identity whose orq id could not address it in a PATCH path (empty, a dot segment, a lone surrogate)', () => {
    for (const id of ['', '.', '..', '\ud800']) expect(identityFromWire({ _id: id, external_id: 'u' }), JSON.stringify(id)).toBeUndefined();
    expect(identityFromWire({ _id: 'contact_01ARZ3NDEKTSV4RRFFQ69G5FAV', external_id: 'u' })).toStrictEqual({ id: 'contact_01ARZ3NDEKTSV4RRFFQ69G5FAV', externalId: 'u' });
  });

  it('freezes what it returns', () => {
    const identity = identityFromWire({ _id: 'c', external_id: 'u', tags: ['t'], metadata: { a: 1 } });
    expect(Object.isFrozen(identity)).toBe(true);
    expect(Object.isFrozen(identity?.tags)).toBe(true);
    expect(Object.isFrozen(identity?.metadata)).toBe(true);
  });
});

describe('parseRetryAfter', () => {
  it.each([
    ['2', 2_000],
    ['0', 0],
    ['Thu, 01 Jan 1970 00:00:05 GMT', 5_000],
    ['soon', undefined],
    [undefined, undefined],
  ])('%j → %j ms', (value, ms) => {
    expect(parseRetryAfter(value, 0)).toBe(ms);
  });

  it.each([
    ['1.5', 1_500],
    ['-5', 0],
    [' ', undefined],
    ['', undefined],
  ])('%j → %j ms', (value, ms) => {
    expect(parseRetryAfter(value, 1_000_000)).toBe(ms);
  });

  it('reads an HTTP date against the real clock by default', () => {
    const inTenSeconds = new Date(Date.now() + 10_000).toUTCString();
    // HTTP dates have whole seconds: up to a second is lost to rounding, plus whatever this line took.
    expect(parseRetryAfter(inTenSeconds)).toBeGreaterThan(8_000);
    expect(parseRetryAfter(inTenSeconds)).toBeLessThanOrEqual(10_000);
  });

  it('a date in the past means now', () => {
    expect(parseRetryAfter(new Date(Date.now() - 60_000).toUTCString())).toBe(0);
    expect(parseRetryAfter('Thu, 01 Jan 1970 00:00:05 GMT', 10_000)).toBe(0);
  });
});

describe.each(shapes)('createIdentityApi on the %s shape', (shape) => {
  it('retrieves (undefined on 404), creates, and updates through the SDK', async () => {
    const emulator = await startEmulator({ shape });
    const api = createIdentityApi(orqClientFor(emulator));
    expect(await api.retrieve('nobody', { timeoutMs: 1_000 })).toBeUndefined();
    const created = await api.create({ externalId: 'api-user', email: 'a@example.com' }, { timeoutMs: 1_000 });
    expect(created).toMatchObject({ externalId: 'api-user', email: 'a@example.com', id: expect.stringMatching(/^contact_/) });
    expect(await api.retrieve('api-user', { timeoutMs: 1_000 })).toMatchObject({ id: created.id });
    const updated = await api.update(created, { displayName: 'Api', tags: ['x'] }, { timeoutMs: 1_000 });
    expect(updated).toMatchObject({ id: created.id, displayName: 'Api', tags: ['x'], email: 'a@example.com' });
    const update = emulator.calls.find((call) => call.operation === 'update');
    // By orq's id, never the external id (which orq would read as an orq id first).
    expect(update?.path).toBe(`/v2/identities/${created.id}`);
    expect(update?.body).toEqual({ display_name: 'Api', tags: ['x'] });
  });

  it('reads metrics when asked for them', async () => {
    const emulator = await startEmulator({ shape });
    emulator.seed({ externalId: 'spender' });
    emulator.setUsage('spender', { totalCost: 1.5, totalTokens: 300, totalRequests: 4, errorRate: 0.25 });
    const api = createIdentityApi(orqClientFor(emulator));
    const identity = await api.retrieve('spender', { timeoutMs: 1_000, includeMetrics: true });
    expect(identity?.metrics).toEqual({ totalCost: 1.5, totalTokens: 300, totalRequests: 4, errorRate: 0.25 });
    expect(emulator.calls[0]?.query).toEqual({ include_metrics: 'true' });
  });

  it('classifies failures by their fields: 429 with Retry-After, 401, 5xx, timeout', async () => {
    const emulator = await startEmulator({ shape });
    const api = createIdentityApi(orqClientFor(emulator));
    emulator.inject({ kind: 'status', status: 429, headers: { 'Retry-After': '3' }, times: 1 });
    await expect(api.retrieve('u', { timeoutMs: 1_000 })).rejects.toMatchObject({ kind: 'rate-limited', statusCode: 429, retryAfterMs: 3_000 });
    emulator.inject({ kind: 'status', status: 403, times: 1 });
    await expect(api.retrieve('u', { timeoutMs: 1_000 })).rejects.toMatchObject({ kind: 'unauthorized', statusCode: 403 });
    emulator.inject({ kind: 'status', status: 500, body: { error: 'Failed to fetch metrics' }, times: 1 });
    await expect(api.retrieve('u', { timeoutMs: 1_000 })).rejects.toThrow(/failed with HTTP 500: \{"error":"Failed to fetch metrics"\}/);
    emulator.inject({ kind: 'hang', times: 1 });
    await expect(api.retrieve('u', { timeoutMs: 100 })).rejects.toMatchObject({ kind: 'timeout' });
    emulator.inject({ kind: 'status', status: 200, body: { unexpected: true }, times: 1 });
    await expect(api.retrieve('u', { timeoutMs: 1_000 })).rejects.toMatchObject({ kind: 'invalid-response' });
  });
});

/** The app's own client, configured to retry: our calls must still go exactly once (we own retries and deadlines). */
function retryingClientFor(emulator: { apiKey: string; url: string }): Orq {
  return new Orq({
    apiKey: emulator.apiKey,
    serverURL: emulator.url,
    retryConfig: { strategy: 'backoff', backoff: { initialInterval: 5, maxInterval: 10, exponent: 1, maxElapsedTime: 2_000 }, retryConnectionErrors: true },
  });
}

describe('createIdentityApi: per-call options and messages', () => {
  it.each(['retrieve', 'create', 'update'] as const)('%s goes exactly once, even on a client configured to retry', async (operation) => {
    const emulator = await startEmulator();
    const once = emulator.seed({ externalId: 'once' });
    const api = createIdentityApi(retryingClientFor(emulator));
    emulator.inject({ operation, kind: 'status', status: 503, times: 1 });
    const call = {
      retrieve: () => api.retrieve('once', { timeoutMs: 1_000 }),
      create: () => api.create({ externalId: 'fresh' }, { timeoutMs: 1_000 }),
      update: () => api.update({ id: once._id, externalId: 'once' }, { displayName: 'Once' }, { timeoutMs: 1_000 }),
    }[operation];
    await expect(call()).rejects.toMatchObject({ kind: 'http', statusCode: 503, operation });
    expect(emulator.count(operation)).toBe(1);
  });

  it.each(['create', 'update'] as const)('%s keeps the deadline it was given', async (operation) => {
    const emulator = await startEmulator();
    const slow = emulator.seed({ externalId: 'slow' });
    const api = createIdentityApi(orqClientFor(emulator));
    emulator.inject({ operation, kind: 'latency', ms: 1_500, times: 1 });
    const started = Date.now();
    const call = operation === 'create'
      ? api.create({ externalId: 'slow-new' }, { timeoutMs: 100 })
      : api.update({ id: slow._id, externalId: 'slow' }, { displayName: 'Slow' }, { timeoutMs: 100 });
    await expect(call).rejects.toMatchObject({ kind: 'timeout', operation });
    expect(Date.now() - started).toBeLessThan(1_400);
  });

  it('says how long a 429 asked to wait, rounded up to seconds, and what orq was asked', async () => {
    const emulator = await startEmulator();
    const api = createIdentityApi(orqClientFor(emulator));
    emulator.inject({ kind: 'status', status: 429, headers: { 'Retry-After': '2.5' }, times: 1 });
    await expect(api.retrieve('u', { timeoutMs: 1_000 })).rejects.toThrow(/^orq retrieve of user "u" was rate-limited \(HTTP 429; Retry-After 3 s\)\.$/);
    emulator.inject({ kind: 'status', status: 429, times: 1 });
    const bare = api.retrieve('u', { timeoutMs: 1_000 });
    await expect(bare).rejects.toThrow(/^orq retrieve of user "u" was rate-limited \(HTTP 429\)\.$/);
    await expect(bare).rejects.toMatchObject({ retryAfterMs: undefined });
  });

  it('reads Retry-After given as an HTTP date against the real clock', async () => {
    const emulator = await startEmulator();
    const api = createIdentityApi(orqClientFor(emulator));
    emulator.inject({ kind: 'status', status: 429, headers: { 'Retry-After': new Date(Date.now() + 10_000).toUTCString() }, times: 1 });
    const error = await api.retrieve('u', { timeoutMs: 1_000 }).then(() => undefined, (rejected: OrqApiError) => rejected);
    expect(error?.retryAfterMs).toBeGreaterThan(8_000);
    expect(error?.retryAfterMs).toBeLessThanOrEqual(10_000);
    expect(error?.message).toMatch(/Retry-After (9|10) s\)/);
  });

  it('tells the operator what to check on 401', async () => {
    const emulator = await startEmulator();
    const api = createIdentityApi(orqClientFor(emulator));
    emulator.inject({ kind: 'status', status: 401, times: 1 });
    await expect(api.create({ externalId: 'u' }, { timeoutMs: 1_000 })).rejects.toThrow(
      'orq create of user "u" was refused with HTTP 401: check the orq API key (ORQ_API_KEY or the client you passed) and its permissions.',
    );
  });

  it('quotes at most 200 characters of an error body', async () => {
    const emulator = await startEmulator();
    const api = createIdentityApi(orqClientFor(emulator));
    // A JSON string body of n characters travels as n + 2 with its quotes.
    emulator.inject({ kind: 'status', status: 500, body: 'x'.repeat(198), times: 1 });
    await expect(api.retrieve('u', { timeoutMs: 1_000 })).rejects.toThrow(`orq retrieve of user "u" failed with HTTP 500: "${'x'.repeat(198)}".`);
    emulator.inject({ kind: 'status', status: 500, body: 'x'.repeat(199), times: 1 });
    await expect(api.retrieve('u', { timeoutMs: 1_000 })).rejects.toThrow(`orq retrieve of user "u" failed with HTTP 500: "${'x'.repeat(199)}….`);
  });

  it('quotes at most 160 characters of a failure that carries no status', async () => {
    const emulator = await startEmulator();
    const api = createIdentityApi(orqClientFor(emulator));
    // The SDK refuses this input before sending, with a long validation message.
    const error = await api.create({ externalId: 'u', tags: [1, 2, 3, 4] as never }, { timeoutMs: 1_000 }).then(() => undefined, (rejected: OrqApiError) => rejected);
    const causeMessage = (error?.cause as Error).message;
    expect(causeMessage.length).toBeGreaterThan(161);
    expect(error?.message).toContain(`(SDKValidationError: ${causeMessage.slice(0, 160)}…)`);
    expect(error?.message).not.toContain(causeMessage.slice(0, 161));
    // The SDK refused it before sending: nothing reached orq, so it is not an outage.
    expect(error).toMatchObject({ kind: 'not-sent', isOutage: false });
  });

  it('names a network failure and keeps it as the cause', async () => {
    const emulator = await startEmulator();
    const api = createIdentityApi(orqClientFor(emulator));
    emulator.inject({ kind: 'reset', times: 1 });
    const error = await api.retrieve('u', { timeoutMs: 1_000 }).then(() => undefined, (rejected: OrqApiError) => rejected);
    expect(error).toMatchObject({ kind: 'network', operation: 'retrieve', externalId: 'u', statusCode: undefined });
    expect(error?.message).toMatch(/^orq retrieve of user "u" could not reach orq \(ConnectionError: Unable to make request[^…]*\)\.$/);
    expect((error?.cause as Error).name).toBe('ConnectionError');
  });

  it('keeps the whole cause chain, with names, codes and statuses, and stacks that point nowhere', async () => {
    const closed = await startEmulator();
    await closed.close();
    const refused = await failureOf(createIdentityApi(orqClientFor(closed)).retrieve('u', { timeoutMs: 1_000 }));
    expect(chainOf(refused)).toEqual(['ConnectionError', 'TypeError', 'Error, code ECONNREFUSED']);
    const emulator = await startEmulator();
    emulator.inject({ kind: 'status', status: 500, times: 1 });
    const failed = await failureOf(createIdentityApi(orqClientFor(emulator)).retrieve('u', { timeoutMs: 1_000 }));
    expect(chainOf(failed)).toEqual(['APIError, status 500']);
    // A timeout's cause keeps the DOMException's numeric code.
    emulator.inject({ kind: 'hang', times: 1 });
    const late = await failureOf(createIdentityApi(orqClientFor(emulator)).retrieve('u', { timeoutMs: 100 }));
    expect(chainOf(late)).toEqual(['RequestTimeoutError', 'TimeoutError, code 23']);
    // Each copy's stack is its own first line: no frames of ours, none of the SDK's.
    for (let cause = refused.cause as Error | undefined; cause !== undefined; cause = cause.cause as Error | undefined) {
      expect(cause.stack).toBe(`${cause.name}: ${cause.message}`);
    }
  });

  it('reports an abort by the app\'s own HTTP client as a call that got no answer in time', async () => {
    const emulator = await startEmulator();
    const aborting = new HTTPClient({ fetcher: async () => Promise.reject(new DOMException('stopped by the app', 'AbortError')) });
    const api = createIdentityApi(new Orq({ apiKey: emulator.apiKey, serverURL: emulator.url, httpClient: aborting }));
    const error = await failureOf(api.retrieve('u', { timeoutMs: 1_000 }));
    expect(error).toMatchObject({ kind: 'timeout', message: 'orq retrieve of user "u" got no answer in time.' });
    expect((error.cause as Error).name).toBe('RequestAbortedError');
  });

  it('reports a body the app\'s client aborts while it is read as a call that got no answer in time', async () => {
    const aborted = () => Promise.resolve(new Response(new ReadableStream({
      pull: (controller) => controller.error(new DOMException('stopped by the app', 'AbortError')),
    }), { status: 200, headers: { 'content-type': 'application/json' } }));
    const error = await failureOf(createIdentityApi(failingClient(aborted)).retrieve('u', { timeoutMs: 1_000 }));
    expect(error).toMatchObject({ kind: 'timeout', message: 'orq retrieve of user "u" got no answer in time.' });
    expect(chainOf(error)).toEqual(['AbortError, code 20']);
  });

  it('keeps four levels of causes, skips a null one, and looks for a redirect loop four levels deep', async () => {
    const nested = (...messages: string[]): Error | undefined =>
      messages.reduceRight<Error | undefined>((cause, message) => new Error(message, cause === undefined ? undefined : { cause }), undefined);
    const failing = (cause: unknown) => () => Promise.reject(new TypeError('fetch failed', { cause }));
    const deep = await failureOf(createIdentityApi(failingClient(failing(nested('a', 'b', 'c')))).retrieve('u', { timeoutMs: 1_000 }));
    expect(chainOf(deep)).toEqual(['ConnectionError', 'TypeError', 'Error', 'Error']);
    expect((deep.cause as Error).cause).toMatchObject({ message: 'fetch failed' });
    const nullCause = await failureOf(createIdentityApi(failingClient(failing(null))).retrieve('u', { timeoutMs: 1_000 }));
    expect(chainOf(nullCause)).toEqual(['ConnectionError', 'TypeError']);
    const loopAtFour = await failureOf(createIdentityApi(failingClient(failing(nested('a', 'redirect count exceeded')))).retrieve('u', { timeoutMs: 1_000 }));
    expect(loopAtFour).toMatchObject({ kind: 'invalid-response', message: expect.stringMatching(/redirects in a loop/) });
    const loopAtFive = await failureOf(createIdentityApi(failingClient(failing(nested('a', 'b', 'redirect count exceeded')))).retrieve('u', { timeoutMs: 1_000 }));
    expect(loopAtFive).toMatchObject({ kind: 'network' });
  });

  it('an API key (given as a function) that a header cannot carry is not-sent, also when the runtime says ByteString', async () => {
    const emulator = await startEmulator();
    const api = createIdentityApi(new Orq({ serverURL: emulator.url, apiKey: async () => 'sk-live-abc\u2028def' }));
    const error = await failureOf(api.retrieve('u', { timeoutMs: 1_000 }));
    expect(error).toMatchObject({ kind: 'not-sent', isOutage: false, message: expect.stringMatching(/could not be sent \(TypeError: Cannot convert argument to a ByteString/) });
    expect(emulator.count()).toBe(0);
  });

  it('a 2xx the SDK cannot read and that is no identity says which call and user', async () => {
    const emulator = await startEmulator();
    const api = createIdentityApi(orqClientFor(emulator));
    emulator.inject({ kind: 'status', status: 200, body: { unexpected: true }, times: 1 });
    await expect(api.retrieve('odd', { timeoutMs: 1_000 })).rejects.toMatchObject({
      kind: 'invalid-response', operation: 'retrieve', externalId: 'odd',
      message: 'orq answered the retrieve of user "odd" with something that is not an identity.',
    });
    // Blank is empty: a body of spaces is not called "not JSON".
    emulator.inject({ kind: 'raw', status: 200, body: '   ', times: 1 });
    await expect(api.retrieve('odd', { timeoutMs: 1_000 })).rejects.toMatchObject({
      kind: 'invalid-response', statusCode: 200, message: 'orq answered the retrieve of user "odd" with HTTP 200 and an empty body.',
    });
  });

  it('redacts the key of the client it was given from error bodies, bare or as a bearer token', async () => {
    const key = 'sk-live-0123456789abcdef';
    const emulator = await startEmulator({ apiKey: key });
    const api = createIdentityApi(orqClientFor(emulator));
    emulator.inject({ kind: 'status', status: 500, body: { note: `you sent ${key}`, auth: `bearer ${key}` }, times: 1 });
    const error = await failureOf(api.retrieve('u', { timeoutMs: 1_000 }));
    expect(error.message).toBe('orq retrieve of user "u" failed with HTTP 500: {"note":"you sent [redacted]","auth":"Bearer [redacted]"}.');
    expect((error.cause as Error).message).not.toContain(key);
  });
});

/** An app's own client of the OrqClient shape (a wrapper, a test double) whose every call rejects with `value`. */
function clientRejectingWith(value: unknown): OrqClient {
  const reject = () => Promise.reject(value as Error);
  return { identities: { retrieve: reject, create: reject, update: reject } };
}

describe('createIdentityApi: failures that are not Errors', () => {
  it.each([
    [null, 'null'],
    [undefined, 'undefined'],
    ['socket closed', 'socket closed'],
    [42, '42'],
  ])('an app\'s own client that rejects with %j: an OrqApiError that quotes it', async (value, quoted) => {
    const error = await failureOf(createIdentityApi(clientRejectingWith(value)).update({ id: 'contact_u', externalId: 'u' }, { email: 'u@example.com' }, { timeoutMs: 1_000 }));
    expect(error).toMatchObject({
      name: 'OrqApiError', kind: 'network', operation: 'update', externalId: 'u', statusCode: undefined,
      message: `orq update of user "u" could not reach orq (Error: ${quoted}).`,
    });
    expect(chainOf(error)).toEqual(['Error']);
    expect((error.cause as Error).message).toBe(quoted);
  });

  it('an HTTP client of the app that rejects with a string: the cause under the SDK\'s error is an Error with that text', async () => {
    const error = await failureOf(createIdentityApi(failingClient(() => Promise.reject('socket closed' as unknown as Error))).retrieve('u', { timeoutMs: 1_000 }));
    expect(error).toMatchObject({ kind: 'network', message: 'orq retrieve of user "u" could not reach orq (UnexpectedClientError: Unexpected HTTP client error: socket closed).' });
    expect(chainOf(error)).toEqual(['UnexpectedClientError', 'Error']);
    expect(((error.cause as Error).cause as Error).message).toBe('socket closed');
  });

  it('an HTTP client of the app that rejects with a plain object: its code is kept, and a missing message is said', async () => {
    const error = await failureOf(createIdentityApi(failingClient(() => Promise.reject({ code: 'ECONNRESET' } as unknown as Error))).retrieve('u', { timeoutMs: 1_000 }));
    expect(error).toMatchObject({ kind: 'network' });
    expect(chainOf(error)).toEqual(['ConnectionError', 'Error, code ECONNRESET']);
    expect(((error.cause as Error).cause as Error).message).toBe('no message');
  });

  it('a cause\'s message is kept whole up to 500 characters, and cut with … past them', async () => {
    const causeOf = async (text: string) => {
      const error = await failureOf(createIdentityApi(failingClient(() => Promise.reject(text as unknown as Error))).retrieve('u', { timeoutMs: 1_000 }));
      return ((error.cause as Error).cause as Error).message;
    };
    expect(await causeOf('x'.repeat(500))).toBe('x'.repeat(500));
    expect(await causeOf('x'.repeat(501))).toBe(`${'x'.repeat(500)}…`);
  });
});

describe('createIdentityApi against a server that answers with an empty error body', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  });

  it('says only the status', async () => {
    server = createServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'application/json' }).end();
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const api = createIdentityApi(new Orq({ apiKey: 'test-key', serverURL: `http://127.0.0.1:${port}` }));
    await expect(api.retrieve('u', { timeoutMs: 1_000 })).rejects.toThrow(/^orq retrieve of user "u" failed with HTTP 502\.$/);
  });
});

describe('answers the SDK misreads (issue 8 point 8)', () => {
  const identityBody = JSON.stringify({ _id: 'contact_raw', external_id: 'raw-user' });

  it.each([
    ['invalid JSON', { 'content-type': 'application/json' }, '{"_id": "contact_', /a body that is not JSON/],
    ['an empty body', { 'content-type': 'application/json' }, '', /a body that is not JSON/],
    ['an empty body without a content type', {}, '', /HTTP 200 and an empty body/],
    ['HTML', { 'content-type': 'text/html' }, '<html>maintenance</html>', /HTTP 200 and a body that is not JSON/],
  ])('a 200 with %s is invalid-response, not an outage', async (_what, headers, body, message) => {
    const emulator = await startEmulator();
    const api = createIdentityApi(orqClientFor(emulator));
    emulator.inject({ kind: 'raw', status: 200, headers, body, times: 1 });
    const error: unknown = await api.retrieve('raw-user', { timeoutMs: 1_000 }).catch((rejected: unknown) => rejected);
    expect(error).toMatchObject({ name: 'OrqApiError', kind: 'invalid-response', isOutage: false });
    expect((error as Error).message).toMatch(message);
  });

  it.each([
    ['no content type', {}],
    ['a text/plain content type', { 'content-type': 'text/plain' }],
  ])('a 200 identity with %s is read', async (_what, headers) => {
    const emulator = await startEmulator();
    const api = createIdentityApi(orqClientFor(emulator));
    emulator.inject({ kind: 'raw', status: 200, headers, body: identityBody, times: 1 });
    expect(await api.retrieve('raw-user', { timeoutMs: 1_000 })).toEqual({ id: 'contact_raw', externalId: 'raw-user' });
  });

  it('a redirect loop costs the default transport one request, reported with the address to use', async () => {
    const emulator = await startEmulator();
    emulator.inject({ kind: 'status', status: 307, headers: { location: `${emulator.url}/v2/identities/looping` } });
    const api = createFetchIdentityApi({ apiKey: emulator.apiKey, serverURL: emulator.url });
    const error: unknown = await api.retrieve('looping', { timeoutMs: 2_000 }).catch((rejected: unknown) => rejected);
    expect(error).toMatchObject({ kind: 'http', statusCode: 307, isOutage: false });
    expect((error as Error).message).toMatch(/was redirected \(HTTP 307 to ".*\/v2\/identities\/looping"\); redirects from orq's API are not followed: set `serverURL`/);
    expect(emulator.count()).toBe(1);
  });

  it('a redirect loop through an app client that follows redirects is invalid-response, not a network outage', async () => {
    const emulator = await startEmulator();
    emulator.inject({ kind: 'status', status: 307, headers: { location: `${emulator.url}/v2/identities/looping` } });
    const api = createIdentityApi(orqClientFor(emulator));
    const error: unknown = await api.retrieve('looping', { timeoutMs: 5_000 }).catch((rejected: unknown) => rejected);
    expect(error).toMatchObject({ kind: 'invalid-response', isOutage: false });
    expect((error as Error).message).toMatch(/redirects in a loop/);
  });

  it('an id the runtime cannot encode is not-sent: nothing reached orq, and it is not an outage (issue 8 point 4)', async () => {
    const emulator = await startEmulator();
    const api = createIdentityApi(orqClientFor(emulator));
    const error: unknown = await api.retrieve('\ud800', { timeoutMs: 1_000 }).catch((rejected: unknown) => rejected);
    expect(error).toMatchObject({ kind: 'not-sent', isOutage: false });
    expect((error as Error).message).toMatch(/could not be sent \(URIError/);
    expect(emulator.count()).toBe(0);
  });
});

describe('redactorFor', () => {
  it.each([
    ['a single-quoted bearer token with a space', "value 'Bearer a b' refused", "value 'Bearer [redacted]' refused"],
    ['any letter case, and the spacing normalised', 'authorization: bEaReR \t abc', 'authorization: Bearer [redacted]'],
    ['each of several tokens, up to a comma, semicolon, quote or backslash', 'Bearer a,Bearer b;Bearer c\\d "Bearer e\'', 'Bearer [redacted],Bearer [redacted];Bearer [redacted]\\d "Bearer [redacted]\''],
  ])('removes %s', (_what, text, expected) => {
    expect(redactorFor(undefined)(text)).toBe(expected);
  });

  it('removes a key of 8 characters or more, trimmed, and leaves shorter ones (they would redact common words)', () => {
    expect(redactorFor('12345678')('a12345678b')).toBe('a[redacted]b');
    expect(redactorFor('1234567')('a1234567b')).toBe('a1234567b');
    expect(redactorFor('  sk-live-abcdef\n')('got sk-live-abcdef.')).toBe('got [redacted].');
    expect(redactorFor('   abc    ')('abc')).toBe('abc');
    expect(redactorFor(undefined)('sk-live-abcdef')).toBe('sk-live-abcdef');
  });
});
