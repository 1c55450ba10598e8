// Reading the user from what auth layers set, and checking it against orq's documented limits.
import { describe, expect, it } from 'vitest';
import { checkUser, defaultGetUser, externalIdProblem } from '../src/user.js';

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
    [42, 'the external id must be a string, received number 42'],
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
    expect(() => checkUser(7 as never)).toThrow(/getUser returned number 7; return an OrqUser object/);
  });
});
