// The error family's contract: what an app's error handler can rely on (name, code, status, cause, context fields).
import { describe, expect, it } from 'vitest';
import {
  IdentityMismatchError,
  InvalidProfileFieldError,
  InvalidUserError,
  OrqApiError,
  OrqIdentityError,
  OrqUnavailableError,
  RepeatedFailuresError,
  type OrqFailureKind,
} from '../src/index.js';
import { reportCategory } from '../src/errors/repeated-failures-error.js';

const cause = new Error('the underlying failure');

describe('the error family', () => {
  it.each([
    ['InvalidUserError', new InvalidUserError('skipped', 'u1'), 'ORQ_IDENTITY_INVALID_USER', 'u1', undefined],
    ['InvalidProfileFieldError', new InvalidProfileFieldError('left out', 'u2', 'email'), 'ORQ_IDENTITY_INVALID_PROFILE_FIELD', 'u2', undefined],
    ['OrqApiError', new OrqApiError('failed', { operation: 'create', kind: 'http', externalId: 'u3', statusCode: 400 }), 'ORQ_IDENTITY_API_ERROR', 'u3', undefined],
    ['IdentityMismatchError', new IdentityMismatchError('u4', 'other'), 'ORQ_IDENTITY_MISMATCH', 'u4', undefined],
    ['OrqUnavailableError', new OrqUnavailableError('no identity', 'timeout', 'u5'), 'ORQ_IDENTITY_UNAVAILABLE', 'u5', 503],
    ['OrqIdentityError', new OrqIdentityError('getUser threw', { code: 'ORQ_IDENTITY_GET_USER_FAILED' }), 'ORQ_IDENTITY_GET_USER_FAILED', undefined, undefined],
  ])('%s carries its name, code, external id and status, and is one of the family', (name, error, code, externalId, status) => {
    expect(error).toBeInstanceOf(OrqIdentityError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe(name);
    expect(String(error)).toMatch(new RegExp(`^${name}: `));
    expect(error.code).toBe(code);
    expect(error.externalId).toBe(externalId);
    expect(error.status).toBe(status);
    // No cause given: none is set, so util.inspect and loggers show no empty "[cause]: undefined".
    expect('cause' in error).toBe(false);
  });

  it('keeps the cause it was given', () => {
    expect(new OrqApiError('failed', { operation: 'retrieve', kind: 'network', externalId: 'u', cause }).cause).toBe(cause);
    expect(new OrqUnavailableError('no identity', 'failed', 'u', cause).cause).toBe(cause);
    expect(new OrqIdentityError('x', { code: 'ORQ_IDENTITY_GET_USER_FAILED', status: 500, cause }).cause).toBe(cause);
    expect(new OrqIdentityError('x', { code: 'ORQ_IDENTITY_GET_USER_FAILED', status: 500, cause }).status).toBe(500);
  });

  it('InvalidProfileFieldError names the field; OrqUnavailableError its reason', () => {
    expect(new InvalidProfileFieldError('left out', 'u', 'avatarUrl').field).toBe('avatarUrl');
    expect(new OrqUnavailableError('closed', 'closed').reason).toBe('closed');
    expect(new OrqUnavailableError('closed', 'closed').externalId).toBeUndefined();
  });

  it('OrqApiError carries the operation, kind, status and Retry-After it was given', () => {
    const error = new OrqApiError('slow down', { operation: 'update', kind: 'rate-limited', externalId: 'u', statusCode: 429, retryAfterMs: 3_000 });
    expect(error).toMatchObject({ message: 'slow down', operation: 'update', kind: 'rate-limited', statusCode: 429, retryAfterMs: 3_000 });
  });

  it('IdentityMismatchError says which identity came back for which user, and what to do', () => {
    const error = new IdentityMismatchError('contact_01ABC', 'someone-else');
    expect(error.receivedExternalId).toBe('someone-else');
    expect(error.message).toBe(
      'orq returned the identity of external id "someone-else" when asked for "contact_01ABC"; it was not attached. ' +
        'An external id that equals another identity\'s "contact_…" id cannot be resolved by retrieve: give that user another external id.',
    );
  });
});

describe('OrqApiError.isOutage: worth another try later, and counted toward the circuit', () => {
  it.each<[OrqFailureKind, number | undefined, boolean]>([
    ['network', undefined, true],
    ['timeout', undefined, true],
    ['rate-limited', 429, true],
    ['unauthorized', 401, true],
    ['http', 500, true],
    ['http', 503, true],
    ['http', 499, false],
    ['http', 404, false],
    ['http', undefined, false],
    ['invalid-response', undefined, false],
    ['invalid-response', 502, true],
    ['not-sent', undefined, false],
    ['not-sent', 500, false],
  ])('%s with status %s → %s', (kind, statusCode, outage) => {
    expect(new OrqApiError('x', { operation: 'retrieve', kind, externalId: 'u', statusCode }).isOutage).toBe(outage);
  });
});

describe('RepeatedFailuresError: many reports of one kind as one', () => {
  const serverError = new OrqApiError('orq retrieve of user "u" failed with HTTP 500.', { operation: 'retrieve', kind: 'http', externalId: 'u', statusCode: 500 });

  it('says how many, of what, over which window, and quotes the last', () => {
    const error = new RepeatedFailuresError(5, 10_000, serverError);
    expect(error).toBeInstanceOf(OrqIdentityError);
    expect(error).toMatchObject({ name: 'RepeatedFailuresError', code: 'ORQ_IDENTITY_REPEATED_FAILURES', count: 5, windowMs: 10_000, externalId: 'u', status: undefined });
    expect(error.cause).toBe(serverError);
    expect(error.message).toBe(
      '5 more OrqApiError (http, 500) in the last 10 s were counted rather than reported one by one; the last: orq retrieve of user "u" failed with HTTP 500.',
    );
  });

  it('labels each kind of report by what tells them apart, rounding the window to seconds', () => {
    expect(new RepeatedFailuresError(2, 1_500, new OrqUnavailableError('no identity', 'timeout', 'v')).message).toMatch(/^2 more OrqUnavailableError \(timeout\) in the last 2 s/);
    expect(new RepeatedFailuresError(2, 1_000, new OrqUnavailableError('no identity', 'timeout', 'v')).status).toBe(503);
    expect(new RepeatedFailuresError(3, 1_000, new InvalidProfileFieldError('left out', 'w', 'email')).message).toMatch(/^3 more InvalidProfileFieldError \(email\) in the last 1 s/);
    expect(new RepeatedFailuresError(4, 1_000, new OrqIdentityError('x', { code: 'ORQ_IDENTITY_GET_USER_FAILED' })).message).toMatch(/^4 more OrqIdentityError \(ORQ_IDENTITY_GET_USER_FAILED\)/);
  });

  it('reports are of one kind when class, code, reason or kind, status and field agree', () => {
    const other500 = new OrqApiError('another message', { operation: 'create', kind: 'http', externalId: 'x', statusCode: 500 });
    const a502 = new OrqApiError('x', { operation: 'retrieve', kind: 'http', externalId: 'u', statusCode: 502 });
    expect(reportCategory(other500)).toBe(reportCategory(serverError));
    expect(reportCategory(a502)).not.toBe(reportCategory(serverError));
    expect(reportCategory(new OrqUnavailableError('a', 'timeout'))).not.toBe(reportCategory(new OrqUnavailableError('a', 'circuit-open')));
    expect(reportCategory(new InvalidProfileFieldError('a', 'u', 'email'))).not.toBe(reportCategory(new InvalidProfileFieldError('a', 'u', 'tags')));
    expect(reportCategory(new InvalidUserError('a'))).toBe('InvalidUserError:ORQ_IDENTITY_INVALID_USER:ORQ_IDENTITY_INVALID_USER');
  });
});
