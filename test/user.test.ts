// Reading the user from what auth layers set, and checking it against orq's documented limits.
import { describe, expect, it } from 'vitest';
import type { OrqUser } from '../src/index.js';
import { InvalidProfileFieldError, InvalidUserError } from '../src/index.js';
import { checkUser, defaultGetUser, errorText, externalIdOf, externalIdProblem, preview } from '../src/user.js';
import { startApp } from './helpers.js';

describe('defaultGetUser', () => {
  it.each([
    ['passport req.user.id', { user: { id: 'p-1' } }, 'p-1'],
    ['a numeric passport id', { user: { id: 42 } }, '42'],
    ['express-jwt req.auth.sub', { auth: { sub: 'auth0|abc' } }, 'auth0|abc'],
    ['Clerk req.auth.userId', { auth: { userId: 'user_2abc' } }, 'user_2abc'],
    ['Clerk req.auth() function', { auth: () => ({ userId: 'user_fn' }) }, 'user_fn'],
    ['nothing', {}, undefined],
    ['a signed-out Clerk request', { auth: { userId: null } }, undefined],
    ['an object id', { user: { id: { nested: true } } }, undefined],
    ['a negative integer id', { user: { id: -7 } }, '-7'],
    ['a fractional id, as nothing', { user: { id: 1.5 } }, undefined],
    ['an unsafe integer id, as nothing (it would not round-trip)', { user: { id: 2 ** 53 } }, undefined],
    ['NaN, as nothing', { user: { id: Number.NaN } }, undefined],
    ['req.user = null, as anonymous', { user: null }, undefined],
    ['req.user = null, falling back to req.auth', { user: null, auth: { sub: 'jwt-1' } }, 'jwt-1'],
    ['req.user a string, as nothing', { user: 'alice' }, undefined],
    ['passport before express-jwt', { user: { id: 'p-2' }, auth: { sub: 'jwt-2' } }, 'p-2'],
    ['an unusable passport id, falling back to req.auth', { user: { id: 1.5 }, auth: { userId: 'user_3' } }, 'user_3'],
    ['express-jwt sub before Clerk userId', { auth: { sub: 'jwt-4', userId: 'user_4' } }, 'jwt-4'],
    ['a numeric express-jwt sub', { auth: { sub: 42 } }, '42'],
    ['a Clerk req.auth() that returns null', { auth: () => null }, undefined],
    ['req.auth = null', { auth: null }, undefined],
  ])('reads %s', (_what, req, expected) => {
    expect(defaultGetUser(req)).toBe(expected);
  });
});

describe('externalIdProblem', () => {
  it.each([
    ['user_12345', undefined],
    ['x'.repeat(120), undefined],
    ['', 'the external id is empty'],
    ['x'.repeat(121), 'the external id is 121 characters long; orq allows 1–120'],
    [42, undefined],
    [4.2, 'the external id must be a string or a safe integer, received number 4.2'],
    ['tenant/42', undefined],
    ['\ud800', 'the external id contains a lone UTF-16 surrogate (not well-formed Unicode)'],
    ['a\u0085b', 'the external id contains control characters'],
    ['a\u007fb', 'the external id contains control characters'],
  ])('%j → %s', (id, problem) => {
    expect(externalIdProblem(id)).toBe(problem);
  });

  it.each([
    ['.', /dot segment/],
    ['..', /dot segment/],
    ['\u0000', /control characters/],
    ['a\tb', /control characters/],
    ['a\u001fb', /control characters/],
    ['a\u007fb', /control characters/],
    ['a\u0080b', /control characters/],
    ['a\u009fb', /control characters/],
    [' a', /leading or trailing whitespace/],
    ['a ', /leading or trailing whitespace/],
    [null, /must be a string or a safe integer, received null$/],
    [undefined, /must be a string or a safe integer, received undefined$/],
    [['a'], /must be a string or a safe integer, received an array$/],
    [{ id: 'a' }, /must be a string or a safe integer, received an object$/],
    [4.2, /must be a string or a safe integer, received number 4.2$/],
  ])('refuses %j', (id, problem) => {
    expect(externalIdProblem(id)).toMatch(problem);
  });

  it.each(['...', '.a', 'a.', 'a b', 'ü', 'auth0|abc', 'contact_01ARZ', '-7', 'a/b', 'a\\b', 'a\u00a0b'])('accepts %j', (id) => {
    expect(externalIdProblem(id)).toBeUndefined();
  });
});

describe('an unusable external id through the middleware', () => {
  it.each<[string, unknown, RegExp]>([
    ['a dot segment', '..', /^User "\.\." was skipped: the external id is a dot segment, which the URL would swallow\. Nothing was sent to orq; the request goes on without an identity\.$/],
    ['a long id, shortened in the message', 'x'.repeat(130), new RegExp(`^User "${'x'.repeat(40)}…" was skipped: the external id is 130 characters long`)],
    ['a fractional number', 4.2, /^A user was skipped: the external id must be a string or a safe integer, received number 4\.2\./],
  ])('%s: nothing is sent and onError gets an InvalidUserError naming the user', async (_what, externalId, message) => {
    const { whoami, emulator, errors } = await startApp({ middleware: { getUser: () => ({ externalId }) as OrqUser } });
    expect((await whoami('anyone').expect(200)).body.identity).toBeNull();
    expect(emulator.calls).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ name: 'InvalidUserError', code: 'ORQ_IDENTITY_INVALID_USER', externalId: typeof externalId === 'string' ? externalId : undefined });
    expect(errors[0]?.message).toMatch(message);
  });
});

describe('checkUser', () => {
  it('keeps valid profile fields and copies the user, so later changes by the app do not leak in', () => {
    const tags = ['a'];
    const { user, dropped } = checkUser({ externalId: 'u', displayName: 'U', email: 'u@example.com', avatarUrl: 'https://example.com/u.png', tags, metadata: { k: 1 } });
    tags.push('b');
    expect(user).toEqual({ externalId: 'u', displayName: 'U', email: 'u@example.com', avatarUrl: 'https://example.com/u.png', tags: ['a'], metadata: { k: 1 } });
    expect(dropped).toEqual([]);
  });

  it('drops metadata that cannot travel as JSON', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const { user, dropped } = checkUser({ externalId: 'u', metadata: cyclic });
    expect(user).toEqual({ externalId: 'u' });
    expect(dropped[0]?.message).toMatch(/The metadata of user "u" was left out: it cannot be sent as JSON/);
  });

  it('throws InvalidUserError for a non-object, non-string user', () => {
    expect(() => checkUser(true as never)).toThrow(/getUser returned boolean true; return an OrqUser object/);
    // runWithOrqUser and resolver.resolve hand it what the app gave: null is refused like any non-user, not read.
    expect(() => checkUser(null as never)).toThrow(InvalidUserError);
    expect(() => checkUser(null as never)).toThrow(/getUser returned null; return an OrqUser object, an external id/);
    expect(() => checkUser(4.2 as never)).toThrow(/^A user was skipped: the external id must be a string or a safe integer, received number 4.2/);
  });
});

describe('checkUser on hostile objects', () => {
  it('reads every property once, copies metadata as JSON, and never throws anything but InvalidUserError', () => {
    const reads: string[] = [];
    const metadata: Record<string, unknown> = { plan: 'pro', toLater: 1 };
    const user = new Proxy({ externalId: 'p', metadata, email: 'p@example.com' }, {
      get(target, key, receiver) {
        reads.push(String(key));
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    const { user: checked, dropped } = checkUser(user);
    metadata.plan = 'changed later';
    expect(checked).toEqual({ externalId: 'p', email: 'p@example.com', metadata: { plan: 'pro', toLater: 1 } });
    expect(dropped).toEqual([]);
    expect(reads.filter((key) => key !== 'then').sort()).toEqual(['avatarUrl', 'displayName', 'email', 'externalId', 'metadata', 'tags']);
  });

  it.each([
    ['a revoked Proxy', (() => { const { proxy, revoke } = Proxy.revocable({}, {}); revoke(); return proxy; })()],
    ['a throwing externalId getter', { get externalId(): string { throw new Error('x'); } }],
    ['an externalId whose error has a throwing message', { get externalId(): string { throw { get message(): string { throw new Error('y'); } }; } }],
  ])('%s → InvalidUserError', (_what, found) => {
    expect(() => checkUser(found)).toThrow(InvalidUserError);
  });

  it.each([
    ['toJSON returning nothing', { toJSON: () => undefined }],
    // JSON null is no object: metadata: null would reach orq.
    ['toJSON returning null', { toJSON: () => null }],
    ['toJSON returning an array', { toJSON: () => [1] }],
  ])('drops metadata whose %s', (_what, metadata) => {
    const { user, dropped } = checkUser({ externalId: 'j', metadata });
    expect(user).toEqual({ externalId: 'j' });
    expect(dropped[0]?.message).toMatch(/The metadata of user "j" was left out: its JSON is not an object/);
  });

  it('drops a profile field that is a revoked Proxy, or has a lone surrogate', () => {
    const { proxy, revoke } = Proxy.revocable([] as string[], {});
    revoke();
    const { user, dropped } = checkUser({ externalId: 'q', tags: proxy, displayName: 'a\ud800', metadata: { n: 10n } });
    expect(user).toEqual({ externalId: 'q' });
    expect(dropped.map((problem) => problem.field).sort()).toEqual(['displayName', 'metadata', 'tags']);
    expect(dropped.every((problem) => problem instanceof InvalidProfileFieldError)).toBe(true);
  });
});

describe('externalIdOf', () => {
  it('reads the id once, turns safe integers into strings, and never throws', () => {
    expect(externalIdOf('a')).toBe('a');
    expect(externalIdOf(42)).toBe('42');
    expect(externalIdOf({ externalId: 7 })).toBe('7');
    expect(externalIdOf({ get externalId(): string { throw new Error('z'); } })).not.toBeTypeOf('string');
  });
});

describe('profile fields against orq\'s formats, through the middleware', () => {
  const email254 = `${'a'.repeat(64)}@${'b'.repeat(185)}.com`;
  it.each<[string, keyof OrqUser, unknown, boolean, RegExp?]>([
    ['an email of 254 characters', 'email', email254, true],
    ['an email of 255 characters', 'email', `a${email254}`, false, /is not an email address/],
    ['an email with longer parts', 'email', 'ada.lovelace@mail.example.co.uk', true],
    ['an email with a space', 'email', 'ada lovelace@example.com', false],
    ['an email with text before it', 'email', 'x ada@example.com', false],
    ['an email with text after it', 'email', 'ada@example.com x', false],
    ['an email with two @', 'email', 'ada@@example.com', false],
    ['an email without a dot in the domain', 'email', 'ada@example', false],
    ['an email without a local part', 'email', '@example.com', false],
    ['an email that is not a string', 'email', 42, false, /number 42 is not an email address/],
    ['a plain-http avatar URL', 'avatarUrl', 'http://example.com/a.png', true],
    ['an https avatar URL', 'avatarUrl', 'https://example.com/a.png', true],
    ['an ftp avatar URL', 'avatarUrl', 'ftp://example.com/a.png', false, /"ftp:\/\/example\.com\/a\.png" is not an absolute http\(s\) URL/],
    ['a javascript: avatar URL', 'avatarUrl', 'javascript:alert(1)', false],
    ['a relative avatar URL', 'avatarUrl', '/a.png', false],
    ['an avatar URL that is not a string', 'avatarUrl', { href: 'https://example.com' }, false, /an object is not an absolute http\(s\) URL/],
    ['a display name that is not a string', 'displayName', 7, false, /expected a well-formed string, received number 7/],
    ['a display name', 'displayName', 'Ada', true],
    ['empty tags', 'tags', [], true],
    ['tags that are not all strings', 'tags', ['a', 1], false, /expected an array of strings/],
    ['tags that are a string', 'tags', 'a', false, /expected an array of strings/],
    ['metadata without a prototype', 'metadata', Object.assign(Object.create(null) as object, { plan: 'pro' }), true],
    ['metadata that is null', 'metadata', null, false, /expected a plain object, received null/],
    ['metadata that is an array', 'metadata', [{ plan: 'pro' }], false, /expected a plain object, received an array/],
    ['metadata that is a string', 'metadata', 'pro', false, /expected a plain object, received "pro"/],
    ['metadata that is a Map', 'metadata', new Map([['plan', 'pro']]), false, /: expected a plain object\.$/],
    ['metadata with a BigInt', 'metadata', { seats: 10n }, false, /it cannot be sent as JSON \(.*BigInt/],
  ])('%s: kept %j', async (_what, field, value, kept, message) => {
    const user = { externalId: 'profiled', [field]: value } as OrqUser;
    const { whoami, emulator, errors } = await startApp({ middleware: { getUser: () => user } });
    expect((await whoami('profiled').expect(200)).body.identity).toMatchObject({ externalId: 'profiled' });
    const sent = emulator.calls.find((call) => call.operation === 'create')?.body as Record<string, unknown>;
    const wireField = { displayName: 'display_name', avatarUrl: 'avatar_url' }[field as string] ?? field;
    if (kept) {
      expect(sent[wireField]).toEqual(field === 'metadata' ? { ...(value as object) } : value);
      expect(errors).toEqual([]);
    } else {
      expect(sent).not.toHaveProperty(wireField);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ name: 'InvalidProfileFieldError', field, externalId: 'profiled' });
      expect(errors[0]?.message).toMatch(new RegExp(`^The ${field} of user "profiled" was left out: `));
      if (message !== undefined) expect(errors[0]?.message).toMatch(message);
    }
  });
});

describe('messages about user-supplied values: short, safe, and never running user code beyond one read', () => {
  const revoked = (() => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    return proxy;
  })();

  it.each<[string, unknown, string]>([
    ['undefined', undefined, 'received undefined'],
    ['a function, without its source', () => 'secret', 'received a function'],
    ['a BigInt', 10n, 'received bigint 10n'],
    ['a boolean', false, 'received boolean false'],
    ['a revoked Proxy', revoked, 'received an object'],
  ])('an id that is %s is described as such', (_what, id, description) => {
    expect(externalIdProblem(id)).toBe(`the external id must be a string or a safe integer, ${description}`);
  });

  it.each<[string, unknown, string]>([
    ['an Error', new Error('boom'), 'boom'],
    ['a string', 'nope', 'nope'],
    ['a number', 42, 'number 42'],
    ['an object', { message: 'not an Error' }, 'an object'],
    ['an Error whose message is not a string', Object.assign(new Error(), { message: 5 }), 'an unreadable error'],
    ['an Error whose message getter throws', Object.defineProperty(new Error(), 'message', { get: () => { throw new Error('no'); } }), 'an unreadable error'],
    ['an Error with a long message', new Error('m'.repeat(161)), `${'m'.repeat(160)}…`],
    ['an Error with a message of 160 characters', new Error('m'.repeat(160)), 'm'.repeat(160)],
  ])('a thrown %s reads as its message', (_what, thrown, text) => {
    expect(errorText(thrown)).toBe(text);
  });

  it('an externalId that is a revoked Proxy is refused with InvalidUserError, not a TypeError', async () => {
    expect(() => checkUser({ externalId: revoked as unknown as string })).toThrow(InvalidUserError);
    const { whoami, errors, emulator } = await startApp({ middleware: { getUser: () => ({ externalId: revoked as unknown as string }) } });
    expect((await whoami('anyone').expect(200)).body.identity).toBeNull();
    expect(emulator.calls).toEqual([]);
    expect(errors.map((error) => error.name)).toEqual(['InvalidUserError']);
  });

  it('an externalId getter that throws: the id check says what it threw', () => {
    expect(externalIdProblem(externalIdOf({ get externalId(): string { throw new Error('boom'); } }))).toBe('reading the external id threw (boom)');
    expect(() => checkUser({ get externalId(): string { throw new Error('boom'); } })).toThrow(
      'A user was skipped: reading the external id threw (boom). Nothing was sent to orq; the request goes on without an identity.',
    );
  });

  it('a user object without an externalId says so', () => {
    expect(() => checkUser({ displayName: 'No id' })).toThrow(/^A user without an `externalId` was skipped: the external id must be a string or a safe integer, received undefined\./);
    expect(() => checkUser({ externalId: 4.2 })).toThrow(/^A user was skipped: /);
  });

  it('a numeric id, alone or in a user, becomes its decimal string', () => {
    expect(checkUser(42)).toEqual({ user: { externalId: '42' }, dropped: [] });
    expect(checkUser({ externalId: 7, displayName: 'Seven' })).toEqual({ user: { externalId: '7', displayName: 'Seven' }, dropped: [] });
    expect(externalIdProblem(42)).toBeUndefined();
    expect(externalIdOf(4.2)).toBe(4.2);
    expect(externalIdOf(null)).toBeNull();
  });

  it('a profile field whose check throws is dropped with what it threw', () => {
    const { dropped } = checkUser({ externalId: 'q', metadata: revoked as Record<string, unknown> });
    expect(dropped[0]?.message).toMatch(/^The metadata of user "q" was left out: checking it threw \(/);
    const reading = checkUser({ externalId: 'r', get email(): string { throw new Error('gone'); } });
    expect(reading.dropped[0]?.message).toBe('The email of user "r" was left out: reading it threw (gone).');
  });

  it.each([
    ['a short id as JSON', 'ada', '"ada"'],
    ['an id of 40 characters whole', 'x'.repeat(40), `"${'x'.repeat(40)}"`],
    ['a longer id cut at 40 characters', 'x'.repeat(41), `"${'x'.repeat(40)}…"`],
    ['C0 controls escaped by JSON', 'a\nb', '"a\\nb"'],
    ['DEL and C1 controls escaped', 'a\u007fb\u0085c\u009f', '"a\\u007fb\\u0085c\\u009f"'],
    ['line and paragraph separators escaped', 'a\u2028b\u2029', '"a\\u2028b\\u2029"'],
    ['other characters as they are', 'é\u00a0ü', '"é\u00a0ü"'],
  ])('preview shows %s', (_what, value, shown) => {
    expect(preview(value)).toBe(shown);
  });
});
