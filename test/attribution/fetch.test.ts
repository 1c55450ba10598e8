// orqIdentityFetch on its own: which calls get the header, in every form fetch takes headers, and what it refuses at start-up.
import { describe, expect, it } from 'vitest';
import { orqIdentityFetch, runWithOrqUser, toWireIdentity, withOrqIdentity, type OrqUser } from '../../src/index.js';
import { startEmulator } from '../helpers.js';

const chat = JSON.stringify({ model: 'm', messages: [] });

/** A base fetch that answers `{}` and records the identity header each call carried (null when none). */
function identityHeaderRecorder(): { seen: Array<string | null>; recorder: typeof fetch } {
  const seen: Array<string | null> = [];
  const recorder = (async (_input: string | URL | Request, init?: RequestInit) => {
    seen.push(new Headers(init?.headers).get('x-orq-identity-id'));
    return new Response('{}');
  }) as typeof fetch;
  return { seen, recorder };
}

describe('orqIdentityFetch', () => {
  it.each([
    ['no headers', undefined],
    ['a record', { 'content-type': 'application/json' }],
    ['a Headers', new Headers({ 'content-type': 'application/json' })],
    ['an array of pairs', [['content-type', 'application/json']] as Array<[string, string]>],
  ])('adds the header to %s without changing the caller\'s object', async (_name, headers) => {
    const emulator = await startEmulator();
    const wrapped = orqIdentityFetch({ origins: [emulator.url] });
    const before = JSON.stringify(headers instanceof Headers ? [...headers] : headers);
    const auth = { authorization: `Bearer ${emulator.apiKey}` };
    const merged = headers === undefined ? auth : headers instanceof Headers ? new Headers([...headers, ...Object.entries(auth)]) : Array.isArray(headers) ? [...headers, ...Object.entries(auth)] : { ...headers, ...auth };
    const response = await runWithOrqUser('fetch-user', () => wrapped(`${emulator.url}/v2/router/chat/completions`, { method: 'POST', headers: merged as RequestInit['headers'], body: chat }));
    expect(response.status).toBe(200);
    expect(emulator.calls[0]?.identity).toEqual({ externalId: 'fetch-user', source: 'header' });
    expect(JSON.stringify(headers instanceof Headers ? [...headers] : headers)).toBe(before);
  });

  it('reads a Request input\'s own headers, and keeps an identity it names (any letter case)', async () => {
    const emulator = await startEmulator();
    const wrapped = orqIdentityFetch({ origins: [emulator.url] });
    const url = `${emulator.url}/v2/router/chat/completions`;
    const auth = `Bearer ${emulator.apiKey}`;
    await runWithOrqUser('current', async () => {
      await wrapped(new Request(url, { method: 'POST', headers: { authorization: auth }, body: chat }));
      await wrapped(new Request(url, { method: 'POST', headers: { authorization: auth, 'X-Orq-Identity-Id': 'from-request' }, body: chat }));
      await wrapped(url, { method: 'POST', headers: { authorization: auth, 'X-ORQ-IDENTITY-ID': 'from-init' }, body: chat });
      await wrapped(new URL(url), { method: 'POST', headers: { authorization: auth }, body: chat });
    });
    expect(emulator.calls.map((call) => call.identity?.externalId)).toEqual(['current', 'from-request', 'from-init', 'current']);
  });

  it('goes out untouched outside a request, for other hosts, and for ids a header cannot carry', async () => {
    const emulator = await startEmulator();
    const other = await startEmulator();
    const wrapped = orqIdentityFetch({ origins: [emulator.url] });
    const post = (base: string) => wrapped(`${base}/v2/router/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${emulator.apiKey}` }, body: chat });
    await post(emulator.url);
    await runWithOrqUser('elsewhere-user', () => post(other.url));
    await runWithOrqUser('ünïcode-user', () => post(emulator.url));
    expect(emulator.calls.map((call) => call.headers['x-orq-identity-id'])).toEqual([undefined, undefined]);
    expect(other.calls.map((call) => call.headers['x-orq-identity-id'])).toEqual([undefined]);
  });

  it('knows api.orq.ai and my.orq.ai, and not look-alikes', async () => {
    const { seen, recorder } = identityHeaderRecorder();
    const wrapped = orqIdentityFetch({ fetch: recorder });
    await runWithOrqUser('host-user', async () => {
      for (const url of [
        'https://api.orq.ai/v2/router/chat/completions',
        'https://my.orq.ai/v2/router/chat/completions',
        'https://api.orq.ai',
        'https://api.orq.ai?from=query',
        'https://api.orq.ai#fragment',
        'https://api.orq.ai:443/v2/router/chat/completions',
        'https://api.orq.ai:8443/v2/router',
        'https://api.orq.ai:443.evil.test/v2/router',
        'https://api.orq.ai.evil.test/v2/router',
        'https://api.orq.ai@evil.test/v2/router',
        'http://api.orq.ai/v2/router',
        'https://api.openai.com/v1/chat/completions',
      ]) await wrapped(url);
    });
    expect(seen).toEqual(['host-user', 'host-user', 'host-user', 'host-user', 'host-user', 'host-user', null, null, null, null, null, null]);
  });

  it('takes an https origin of a proxy, path dropped, in addition to orq\'s own', async () => {
    const { seen, recorder } = identityHeaderRecorder();
    const wrapped = orqIdentityFetch({ fetch: recorder, origins: ['https://orq-proxy.example.com/some/path'] });
    await runWithOrqUser('proxy-user', async () => {
      for (const url of ['https://orq-proxy.example.com/v2/router/chat/completions', 'https://api.orq.ai/v2/router', 'https://elsewhere.example.com/v2']) await wrapped(url);
    });
    expect(seen).toEqual(['proxy-user', 'proxy-user', null]);
  });

  it('takes a proxy on another port of orq\'s own host, though orq\'s origin is checked first', async () => {
    const { seen, recorder } = identityHeaderRecorder();
    const wrapped = orqIdentityFetch({ fetch: recorder, origins: ['https://api.orq.ai:8443'] });
    await runWithOrqUser('port-user', async () => {
      for (const url of ['https://api.orq.ai:8443/v2/router', 'https://api.orq.ai:9443/v2/router']) await wrapped(url);
    });
    expect(seen).toEqual(['port-user', null]);
  });

  it('reads header lists exactly: another name of the same length, inherited keys, an identity among pairs', async () => {
    const { seen, recorder } = identityHeaderRecorder();
    const wrapped = orqIdentityFetch({ fetch: recorder });
    const url = 'https://api.orq.ai/v2/router/chat/completions';
    await runWithOrqUser('list-user', async () => {
      // As long as x-orq-identity-id, and another header.
      await wrapped(url, { headers: { 'x-orq-request-ids': 'r' } });
      await wrapped(url, { headers: [['x-orq-request-ids', 'r']] });
      await wrapped(url, { headers: [['accept', 'application/json'], ['X-Orq-Identity-Id', 'from-pairs']] });
      // fetch sends a record's own keys only, so an inherited one names nobody.
      await wrapped(url, { headers: Object.create({ 'x-orq-identity-id': 'inherited' }) as Record<string, string> });
    });
    expect(seen).toEqual(['list-user', 'list-user', 'from-pairs', 'list-user']);
  });

  it('sends printable ASCII ids, spaces and tildes included, and no header for an id with any other character', async () => {
    const { seen, recorder } = identityHeaderRecorder();
    const wrapped = orqIdentityFetch({ fetch: recorder });
    // (Control characters never get this far: runWithOrqUser and the middleware refuse such ids.)
    for (const id of ['a b~', 'user-\u00fc', '\u4e16-user']) await runWithOrqUser(id, () => wrapped('https://api.orq.ai/v2/router'));
    expect(seen).toEqual(['a b~', null, null]);
  });

  it('warns at start-up about an option name it does not know, suggesting the right one', async () => {
    const warnings: string[] = [];
    const listen = (warning: Error): void => {
      warnings.push(warning.message);
    };
    process.on('warning', listen);
    try {
      orqIdentityFetch({ fetch: globalThis.fetch, origins: [] });
      orqIdentityFetch({ origin: ['http://127.0.0.1:1'] } as never);
      withOrqIdentity({}, { upsert: false });
      withOrqIdentity({}, { upsrt: true } as never);
      // Node emits process warnings on a later tick.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', listen);
    }
    expect(warnings).toEqual([
      'orqIdentityFetch: unknown option `origin` is ignored; did you mean `origins`?',
      'withOrqIdentity: unknown option `upsrt` is ignored; did you mean `upsert`?',
    ]);
  });

  it('never patches globalThis.fetch', () => {
    const original = globalThis.fetch;
    orqIdentityFetch();
    expect(globalThis.fetch).toBe(original);
  });

  it.each([
    [{ origins: 'http://127.0.0.1' }, /`origins` must be an array/],
    [{ origins: ['not a url'] }, /not a URL/],
    [{ origins: ['ftp://orq.example'] }, /only http\(s\) origins/],
    [{ fetch: 'fetch' }, /`fetch` must be a function/],
  ])('refuses %j at start-up with a TypeError naming the option', (options, message) => {
    expect(() => orqIdentityFetch(options as never)).toThrow(TypeError);
    expect(() => orqIdentityFetch(options as never)).toThrow(message);
  });
});

describe('toWireIdentity', () => {
  it('gives the gateway\'s snake_case names, which a raw call must use for the profile to count', async () => {
    const user: OrqUser = { externalId: 'raw-user', displayName: 'Raw User', email: 'raw@example.com', tags: ['beta'], metadata: { plan: 'pro' } };
    expect(toWireIdentity(user)).toStrictEqual({ id: 'raw-user', display_name: 'Raw User', email: 'raw@example.com', tags: ['beta'] });
    expect(toWireIdentity()).toBeUndefined();
    expect(runWithOrqUser({ externalId: 'ctx-user', displayName: 'Ctx' }, () => toWireIdentity())).toStrictEqual({ id: 'ctx-user', display_name: 'Ctx' });
    expect(toWireIdentity({ externalId: 'bare' })).toStrictEqual({ id: 'bare' });
    // The tags are a copy: a caller that adds to them does not change the user.
    toWireIdentity(user).tags?.push('added');
    expect(user.tags).toEqual(['beta']);

    const emulator = await startEmulator();
    await fetch(`${emulator.url}/v3/router/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${emulator.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', input: 'hi', identity: toWireIdentity(user) }),
    });
    expect(emulator.identities()).toMatchObject([{ external_id: 'raw-user', display_name: 'Raw User', email: 'raw@example.com', tags: ['beta'] }]);
  });
});
