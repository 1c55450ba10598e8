// Proves the orq.ai emulator speaks the wire format the real @orq-ai/node SDK sends and parses, including its fault modes.
import { Orq } from '@orq-ai/node';
import {
  APIError,
  ConnectionError,
  RequestTimeoutError,
  ResponseValidationError,
} from '@orq-ai/node/models/errors/index.js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_EMULATOR_WORKSPACE_ID,
  EMULATED_CALL_USAGE,
  startOrqEmulator,
} from '../../src/testing/index.js';
import type { OrqEmulator, OrqEmulatorOptions } from '../../src/testing/index.js';

const ULID_ID = /^contact_[0-9A-HJKMNP-TV-Z]{26}$/;

const running: OrqEmulator[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((emu) => emu.close()));
});

async function start(options?: OrqEmulatorOptions): Promise<OrqEmulator> {
  const emu = await startOrqEmulator(options);
  running.push(emu);
  return emu;
}

function sdk(emu: OrqEmulator, timeoutMs?: number): Orq {
  return new Orq({ apiKey: emu.apiKey, serverURL: emu.url, timeoutMs });
}

interface ApiResult {
  status: number;
  body: unknown;
  headers: Headers;
}

async function api(
  emu: OrqEmulator,
  method: string,
  path: string,
  body?: unknown,
  apiKey: string = emu.apiKey,
): Promise<ApiResult> {
  const response = await fetch(`${emu.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable('expected the call to fail'),
    (error: unknown) => error,
  );
}

describe('startOrqEmulator basics', () => {
  it('listens on loopback with default key and records nothing for seeds', async () => {
    const emu = await start();
    expect(emu.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(emu.apiKey).toBe('orq-emulator-key');
    const seeded = emu.seed({ externalId: 'seeded', tags: ['a'] });
    expect(seeded._id).toMatch(ULID_ID);
    expect(seeded).toMatchObject({ external_id: 'seeded', workspace_id: DEFAULT_EMULATOR_WORKSPACE_ID, display_name: null });
    expect(emu.count()).toBe(0);
    expect(emu.identities().map((identity) => identity.external_id)).toEqual(['seeded']);
  });

  it('rejects duplicate or invalid seeds', async () => {
    const emu = await start();
    emu.seed({ externalId: 'dup' });
    expect(() => emu.seed({ externalId: 'dup' })).toThrow(/already exists/);
    expect(() => emu.seed({ externalId: 'bad', email: 'nope' })).toThrow(/email/);
  });

  it('returns copies, so callers cannot mutate the store', async () => {
    const emu = await start();
    emu.seed({ externalId: 'copy', tags: ['x'] }).tags.push('mutated');
    emu.identities()[0]?.tags.push('mutated');
    expect(emu.identities()[0]?.tags).toEqual(['x']);
  });
});

describe("shape 'sdk' through the real SDK", () => {
  it('creates and retrieves by _id and by external id', async () => {
    const emu = await start({ shape: 'sdk', workspaceId: 'ws-1' });
    const orq = sdk(emu);
    const created = await orq.identities.create({
      externalId: 'user/ü 1',
      displayName: 'Jane',
      tags: ['premium'],
      metadata: { plan: 'pro' },
    });
    const identity = created.result.identity;
    expect(identity.id).toMatch(ULID_ID);
    expect(identity).toMatchObject({ externalId: 'user/ü 1', workspaceId: 'ws-1', displayName: 'Jane', tags: ['premium'] });
    expect(identity.email).toBeUndefined();
    expect(Date.parse(identity.created)).not.toBeNaN();

    const byId = await orq.identities.retrieve({ id: identity.id });
    const byExternal = await orq.identities.retrieve({ id: 'user/ü 1' });
    expect(byId.identity.externalId).toBe('user/ü 1');
    expect(byExternal.identity.id).toBe(identity.id);
    expect(byExternal.identity.metrics).toBeUndefined();
    expect(emu.calls.at(-1)?.path).toBe('/v2/identities/user%2F%C3%BC%201');
  });

  it('wraps in { identity }, omits nulls and always sends workspace_id', async () => {
    const emu = await start({ shape: 'sdk' });
    emu.seed({ externalId: 'raw', displayName: null });
    const created = await api(emu, 'POST', '/v2/identities', { external_id: 'raw2', email: null });
    const retrieved = await api(emu, 'GET', '/v2/identities/raw');
    for (const { body } of [created, retrieved]) {
      expect(body).toEqual({ identity: expect.objectContaining({ workspace_id: DEFAULT_EMULATOR_WORKSPACE_ID }) });
      expect(JSON.stringify(body)).not.toContain('null');
    }
  });

  it('updates only the fields sent and bumps updated', async () => {
    const emu = await start({ shape: 'sdk' });
    const seeded = emu.seed({ externalId: 'u1', displayName: 'Old', email: 'old@example.com', tags: ['a', 'b'], metadata: { x: 1 } });
    const updated = await sdk(emu).identities.update({
      id: 'u1',
      updateIdentityRequest: { displayName: 'New', tags: ['c'], metadata: { y: 2 } },
    });
    expect(updated.identity).toMatchObject({ displayName: 'New', email: 'old@example.com', tags: ['c'], metadata: { y: 2 } });
    expect(updated.identity.created).toBe(seeded.created);
    expect(Date.parse(updated.identity.updated)).toBeGreaterThan(Date.parse(seeded.updated));
    expect(emu.calls[0]).toMatchObject({ operation: 'update', method: 'PATCH', body: { display_name: 'New', tags: ['c'] } });
  });

  it('clears a field set to null, which then disappears from the sdk shape', async () => {
    const emu = await start({ shape: 'sdk' });
    emu.seed({ externalId: 'n1', displayName: 'Name' });
    const { status, body } = await api(emu, 'PATCH', '/v2/identities/n1', { display_name: null });
    expect(status).toBe(200);
    expect(body).toEqual({ identity: expect.not.objectContaining({ display_name: expect.anything() }) });
    expect(emu.identities()[0]?.display_name).toBeNull();
  });

  it('adds metrics only with include_metrics=true, zeros until usage is set', async () => {
    const emu = await start({ shape: 'sdk' });
    emu.seed({ externalId: 'm1' });
    const orq = sdk(emu);
    expect((await orq.identities.retrieve({ id: 'm1', includeMetrics: true })).identity.metrics).toEqual({
      totalCost: 0,
      totalTokens: 0,
      totalRequests: 0,
      errorRate: 0,
    });
    emu.setUsage('m1', { totalCost: 1.5, totalTokens: 300, totalRequests: 4, errorRate: 0.25 });
    const withMetrics = await orq.identities.retrieve({ id: 'm1', includeMetrics: true });
    expect(withMetrics.identity.metrics).toEqual({ totalCost: 1.5, totalTokens: 300, totalRequests: 4, errorRate: 0.25 });
    expect(emu.calls.at(-1)?.query).toEqual({ include_metrics: 'true' });
    expect((await orq.identities.retrieve({ id: 'm1' })).identity.metrics).toBeUndefined();
  });

  it('lists identities in a shape the SDK parses', async () => {
    const emu = await start({ shape: 'sdk' });
    emu.seed({ externalId: 'l1' });
    emu.seed({ externalId: 'l2', email: 'l2@example.com' });
    const list = await sdk(emu).identities.list();
    expect(list.object).toBe('list');
    expect(list.hasMore).toBe(false);
    expect(list.data.map((identity) => identity.externalId)).toEqual(['l1', 'l2']);
    expect(emu.count('list')).toBe(1);
  });

  it('surfaces 404 and conflicts as APIError', async () => {
    const emu = await start({ shape: 'sdk', conflictStatus: 422 });
    const orq = sdk(emu);
    const missing = await rejectionOf(orq.identities.retrieve({ id: 'ghost' }));
    expect(missing).toBeInstanceOf(APIError);
    expect((missing as APIError).statusCode).toBe(404);
    expect((missing as APIError).body).toContain('Identity not found');

    await orq.identities.create({ externalId: 'twice' });
    const conflict = await rejectionOf(orq.identities.create({ externalId: 'twice' }));
    expect((conflict as APIError).statusCode).toBe(422);
    expect(JSON.parse((conflict as APIError).body)).toEqual({ error: "Identity with external_id 'twice' already exists" });
  });
});

describe("shape 'documented'", () => {
  it('returns bare objects with nulls; retrieve has no workspace_id', async () => {
    const emu = await start();
    const created = await api(emu, 'POST', '/v2/identities', { external_id: 'doc1', tags: ['t'] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      external_id: 'doc1',
      workspace_id: DEFAULT_EMULATOR_WORKSPACE_ID,
      display_name: null,
      email: null,
      avatar_url: null,
      tags: ['t'],
      metadata: {},
    });
    const retrieved = await api(emu, 'GET', '/v2/identities/doc1?include_metrics=true');
    expect(retrieved.status).toBe(200);
    expect(retrieved.body).not.toHaveProperty('workspace_id');
    expect(retrieved.body).toMatchObject({
      external_id: 'doc1',
      display_name: null,
      metrics: { total_cost: 0, total_tokens: 0, total_requests: 0, error_rate: 0 },
    });
  });

  it('makes the SDK throw ResponseValidationError carrying the parsed body', async () => {
    const emu = await start();
    const orq = sdk(emu);
    const createError = await rejectionOf(orq.identities.create({ externalId: 'doc2' }));
    expect(createError).toBeInstanceOf(ResponseValidationError);
    // Create parses { Headers, Result } so the body sits under Result; retrieve parses the body itself.
    expect((createError as ResponseValidationError).rawValue).toMatchObject({
      Result: { external_id: 'doc2', display_name: null },
    });
    expect(emu.identities()).toHaveLength(1);

    const retrieveError = await rejectionOf(orq.identities.retrieve({ id: 'doc2' }));
    expect(retrieveError).toBeInstanceOf(ResponseValidationError);
    expect((retrieveError as ResponseValidationError).rawValue).toMatchObject({ external_id: 'doc2', email: null });
  });
});

describe('validation and routing', () => {
  it.each([
    [{}, /external_id is required/],
    [{ external_id: '' }, /external_id/],
    [{ external_id: 'x'.repeat(121) }, /external_id/],
    [{ external_id: 7 }, /external_id/],
    [{ external_id: 'v', display_name: 3 }, /display_name/],
    [{ external_id: 'v', email: 'not-an-email' }, /email/],
    [{ external_id: 'v', avatar_url: 'ftp://example.com/a.png' }, /avatar_url/],
    [{ external_id: 'v', avatar_url: '/relative.png' }, /avatar_url/],
    [{ external_id: 'v', tags: ['ok', 1] }, /tags/],
    [{ external_id: 'v', metadata: ['not', 'object'] }, /metadata/],
    [['array body'], /JSON object/],
    ['{not json', /not valid JSON/],
  ])('rejects create body %j with 400', async (body, message) => {
    const emu = await start();
    const { status, body: error } = await api(emu, 'POST', '/v2/identities', body);
    expect(status).toBe(400);
    expect((error as { error: string }).error).toMatch(message);
    expect(emu.identities()).toHaveLength(0);
  });

  it('accepts 120-char ids and null profile fields', async () => {
    const emu = await start();
    const body = { external_id: 'x'.repeat(120), display_name: null, email: null, avatar_url: null };
    expect((await api(emu, 'POST', '/v2/identities', body)).status).toBe(201);
  });

  it('validates updates and 404s unknown identities', async () => {
    const emu = await start();
    emu.seed({ externalId: 'p1' });
    expect((await api(emu, 'PATCH', '/v2/identities/p1', { email: 'bad' })).status).toBe(400);
    expect(await api(emu, 'PATCH', '/v2/identities/nobody', { display_name: 'x' })).toMatchObject({
      status: 404,
      body: { error: 'Identity not found' },
    });
  });

  it('serves the list route with and without a trailing slash', async () => {
    const emu = await start();
    emu.seed({ externalId: 'l1' });
    for (const path of ['/v2/identities', '/v2/identities/']) {
      const { status, body } = await api(emu, 'GET', path);
      expect(status).toBe(200);
      expect(body).toMatchObject({ object: 'list', has_more: false, data: [{ external_id: 'l1' }] });
    }
    expect(emu.count('list')).toBe(2);
  });

  it.each([
    ['GET', '/v2/identities/a/b'],
    ['GET', '/v2/other'],
    ['DELETE', '/v2/identities/l1'],
    ['PUT', '/v2/identities'],
  ])('answers %s %s as unknown 404', async (method, path) => {
    const emu = await start();
    emu.seed({ externalId: 'a' });
    emu.seed({ externalId: 'l1' });
    expect(await api(emu, method, path)).toMatchObject({ status: 404, body: { error: 'Not found' } });
    expect(emu.calls).toMatchObject([{ operation: 'unknown', method, path, status: 404 }]);
  });
});

describe('auth', () => {
  it('answers 401 without the right bearer key and records the call', async () => {
    const emu = await start({ apiKey: 'secret' });
    emu.seed({ externalId: 'a1' });
    expect(await api(emu, 'GET', '/v2/identities/a1', undefined, 'wrong')).toMatchObject({
      status: 401,
      body: { error: 'Unauthorized' },
    });
    const missingHeader = await fetch(`${emu.url}/v2/identities/a1`);
    expect(missingHeader.status).toBe(401);
    expect(emu.calls.map((call) => call.status)).toEqual([401, 401]);

    const error = await rejectionOf(new Orq({ apiKey: 'wrong', serverURL: emu.url }).identities.retrieve({ id: 'a1' }));
    expect((error as APIError).statusCode).toBe(401);
    expect(emu.calls.at(-1)?.headers.authorization).toBe('Bearer wrong');
    expect((await api(emu, 'GET', '/v2/identities/a1')).status).toBe(200);
  });
});

describe('gateway calls (invoke, chat)', () => {
  it('parses deployments.invoke and attributes usage to the top-level identity', async () => {
    const emu = await start({ shape: 'sdk' });
    const orq = sdk(emu);
    const result = await orq.deployments.invoke({
      key: 'my-deployment',
      identity: { id: 'inv-1', displayName: 'Inv', logoUrl: 'https://example.com/a.png', metadata: [{ a: 1 }, { b: 2 }] },
    });
    expect(result?.choices[0]?.message).toMatchObject({ type: 'content', role: 'assistant' });
    expect(result?.telemetry.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(emu.calls[0]).toMatchObject({ operation: 'invoke', body: { key: 'my-deployment', identity: { id: 'inv-1', logo_url: 'https://example.com/a.png' } } });

    expect(emu.identities()).toMatchObject([
      { external_id: 'inv-1', display_name: 'Inv', avatar_url: 'https://example.com/a.png', metadata: { a: 1, b: 2 } },
    ]);
    await orq.deployments.invoke({ key: 'my-deployment', identity: { id: 'inv-1', displayName: 'Ignored' } });
    const { identity } = await orq.identities.retrieve({ id: 'inv-1', includeMetrics: true });
    expect(identity.displayName).toBe('Inv');
    expect(identity.metrics?.totalRequests).toBe(2);
    expect(identity.metrics?.totalTokens).toBe(2 * (EMULATED_CALL_USAGE.promptTokens + EMULATED_CALL_USAGE.completionTokens));
    expect(identity.metrics?.totalCost).toBeCloseTo(2 * EMULATED_CALL_USAGE.cost);
  });

  it('parses router chat completions and reads the identity from orq.identity', async () => {
    const emu = await start({ shape: 'sdk' });
    emu.seed({ externalId: 'chat-1' });
    emu.setUsage('chat-1', { totalCost: 0, totalTokens: 0, totalRequests: 1, errorRate: 1 });
    const result = await sdk(emu).router.chat.completions.create({
      model: 'openai/gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      orq: { identity: { id: 'chat-1' } },
    });
    expect(result).toMatchObject({ object: 'chat.completion', model: 'openai/gpt-4o-mini' });
    expect(emu.calls[0]?.body).toMatchObject({ orq: { identity: { id: 'chat-1' } }, stream: false });
    expect(emu.calls[0]?.body).not.toHaveProperty('identity');
    const metrics = (await api(emu, 'GET', '/v2/identities/chat-1?include_metrics=true')).body as {
      identity: { metrics: { total_requests: number; error_rate: number } };
    };
    expect(metrics.identity.metrics).toMatchObject({ total_requests: 2, error_rate: 0.5 });
  });

  it('answers gateway calls without an identity, recording none', async () => {
    const emu = await start();
    expect((await api(emu, 'POST', '/v2/router/chat/completions', { model: 'm', messages: [] })).status).toBe(200);
    expect((await api(emu, 'POST', '/v2/deployments/invoke', { key: 'k' })).status).toBe(200);
    expect(emu.calls.map((call) => call.identity)).toEqual([undefined, undefined]);
    expect(emu.identities()).toHaveLength(0);
  });
});

describe('faults', () => {
  it('injects a status with headers, consumed per request', async () => {
    const emu = await start();
    emu.seed({ externalId: 'f1' });
    emu.inject({ kind: 'status', status: 503, headers: { 'Retry-After': '2' }, times: 1 });
    const failed = await api(emu, 'GET', '/v2/identities/f1');
    expect(failed).toMatchObject({ status: 503, body: { error: 'Injected 503' } });
    expect(failed.headers.get('retry-after')).toBe('2');
    expect((await api(emu, 'GET', '/v2/identities/f1')).status).toBe(200);
    expect(emu.calls.map((call) => call.status)).toEqual([503, 200]);
  });

  it('targets one operation and applies faults in injection order', async () => {
    const emu = await start();
    emu.inject({ operation: 'create', kind: 'status', status: 500, body: { error: 'first' }, times: 1 });
    emu.inject({ operation: 'create', kind: 'status', status: 502, times: 1 });
    expect((await api(emu, 'GET', '/v2/identities')).status).toBe(200);
    expect(await api(emu, 'POST', '/v2/identities', { external_id: 'o1' })).toMatchObject({ status: 500, body: { error: 'first' } });
    expect((await api(emu, 'POST', '/v2/identities', { external_id: 'o1' })).status).toBe(502);
    expect((await api(emu, 'POST', '/v2/identities', { external_id: 'o1' })).status).toBe(201);
  });

  it('keeps unlimited faults until clearFaults', async () => {
    const emu = await start();
    emu.inject({ kind: 'status', status: 429 });
    expect((await api(emu, 'GET', '/v2/identities')).status).toBe(429);
    expect((await api(emu, 'GET', '/v2/identities')).status).toBe(429);
    emu.clearFaults();
    expect((await api(emu, 'GET', '/v2/identities')).status).toBe(200);
  });

  it('applies faults before auth', async () => {
    const emu = await start();
    emu.inject({ kind: 'status', status: 503, times: 1 });
    expect((await api(emu, 'GET', '/v2/identities', undefined, 'wrong')).status).toBe(503);
    expect((await api(emu, 'GET', '/v2/identities', undefined, 'wrong')).status).toBe(401);
  });

  it('hangs until the SDK times out', async () => {
    const emu = await start({ shape: 'sdk' });
    emu.inject({ operation: 'retrieve', kind: 'hang', times: 1 });
    const error = await rejectionOf(sdk(emu, 150).identities.retrieve({ id: 'h1' }));
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect(emu.calls).toMatchObject([{ operation: 'retrieve', status: 'hang' }]);
  });

  it('resets the connection, which the SDK reports as ConnectionError', async () => {
    const emu = await start({ shape: 'sdk' });
    emu.inject({ kind: 'reset', times: 1 });
    const error = await rejectionOf(sdk(emu).identities.create({ externalId: 'r1' }));
    expect(error).toBeInstanceOf(ConnectionError);
    expect(emu.calls).toMatchObject([{ operation: 'create', status: 'reset', body: { external_id: 'r1' } }]);
    expect((await sdk(emu).identities.create({ externalId: 'r2' })).result.identity.externalId).toBe('r2');
  });

  it('delays with a latency fault, then answers normally', async () => {
    const emu = await start();
    emu.inject({ kind: 'latency', ms: 150, times: 1 });
    const started = performance.now();
    expect((await api(emu, 'GET', '/v2/identities')).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(emu.calls[0]?.status).toBe(200);
  });

  it('applies base latency from options and setLatency', async () => {
    const emu = await start({ latencyMs: 120 });
    let started = performance.now();
    await api(emu, 'GET', '/v2/identities');
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
    emu.setLatency(0);
    started = performance.now();
    await api(emu, 'GET', '/v2/identities');
    expect(performance.now() - started).toBeLessThan(100);
    expect(() => emu.setLatency(-1)).toThrow(RangeError);
  });
});

describe('call recording', () => {
  it('records raw path, query, lowercased headers and JSON body; count and resetCalls', async () => {
    const emu = await start();
    await api(emu, 'POST', '/v2/identities', { external_id: 'c1' });
    await api(emu, 'GET', '/v2/identities/c%201?include_metrics=true&x=1');
    expect(emu.calls[0]).toMatchObject({
      operation: 'create',
      method: 'POST',
      path: '/v2/identities',
      query: {},
      body: { external_id: 'c1' },
      status: 201,
    });
    expect(emu.calls[0]?.headers['content-type']).toBe('application/json');
    expect(emu.calls[1]).toMatchObject({
      operation: 'retrieve',
      path: '/v2/identities/c%201',
      query: { include_metrics: 'true', x: '1' },
      body: undefined,
      status: 404,
    });
    expect(emu.count()).toBe(2);
    expect(emu.count('create')).toBe(1);
    expect(emu.count('update')).toBe(0);
    emu.resetCalls();
    expect(emu.calls).toHaveLength(0);
    expect(emu.identities()).toHaveLength(1);
  });
});

describe('close', () => {
  it('ends hanging requests instead of waiting for them', async () => {
    const emu = await startOrqEmulator();
    emu.inject({ kind: 'hang' });
    const pending = fetch(`${emu.url}/v2/identities`).then(
      () => 'answered',
      () => 'failed',
    );
    await expect.poll(() => emu.count()).toBe(1);
    const started = performance.now();
    await emu.close();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(await pending).toBe('failed');
    await emu.close();
    await expect(fetch(`${emu.url}/v2/identities`)).rejects.toThrow();
  });
});
