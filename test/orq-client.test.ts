// Wire shapes and error reading, through the real SDK where the SDK is involved.
import { describe, expect, it } from 'vitest';
import { createIdentityApi, identityFromWire, parseRetryAfter } from '../src/orq-client.js';
import { createFetchIdentityApi } from '../src/transport/fetch-api.js';
import { orqClientFor, shapes, startEmulator } from './helpers.js';

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

  it('refuses what is not an identity', () => {
    expect(identityFromWire({ error: 'nope' })).toBeUndefined();
    expect(identityFromWire(null)).toBeUndefined();
    expect(identityFromWire({ _id: 1, external_id: 'u' })).toBeUndefined();
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
});

describe.each(shapes)('createIdentityApi on the %s shape', (shape) => {
  it('retrieves (undefined on 404), creates, and updates through the SDK', async () => {
    const emulator = await startEmulator({ shape });
    const api = createIdentityApi(orqClientFor(emulator));
    expect(await api.retrieve('nobody', { timeoutMs: 1_000 })).toBeUndefined();
    const created = await api.create({ externalId: 'api-user', email: 'a@example.com' }, { timeoutMs: 1_000 });
    expect(created).toMatchObject({ externalId: 'api-user', email: 'a@example.com', id: expect.stringMatching(/^contact_/) });
    expect(await api.retrieve('api-user', { timeoutMs: 1_000 })).toMatchObject({ id: created.id });
    const updated = await api.update('api-user', { displayName: 'Api', tags: ['x'] }, { timeoutMs: 1_000 });
    expect(updated).toMatchObject({ id: created.id, displayName: 'Api', tags: ['x'], email: 'a@example.com' });
    expect(emulator.calls.find((call) => call.operation === 'update')?.body).toEqual({ display_name: 'Api', tags: ['x'] });
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

  it('a redirect loop costs the default transport (no client passed) one request, reported with the address to use', async () => {
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
