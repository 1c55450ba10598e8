// Reading the user from what auth layers set, and checking it against orq's documented limits.
import { describe, expect, it } from 'vitest';
import { InvalidProfileFieldError, InvalidUserError } from '../src/index.js';
import { checkUser, defaultGetUser, externalIdOf, externalIdProblem } from '../src/user.js';

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
