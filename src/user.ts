// Getting the user out of a request, and checking it against orq's documented limits before anything is sent.
import { InvalidProfileFieldError } from './errors/invalid-profile-field-error.js';
import { InvalidUserError } from './errors/invalid-user-error.js';
import type { OrqUser } from './types.js';

/** What `getUser` may return: a user, its external id, or nothing for an anonymous request. */
export type UserLike = OrqUser | string | null | undefined;

const maxExternalIdLength = 120;

/**
 * Reads what common auth layers leave on the request:
 * passport's `req.user.id`, express-jwt's `req.auth.sub`, Clerk's `req.auth.userId`
 * (Clerk's newer `req.auth()` function included). A number id becomes its decimal string.
 */
export function defaultGetUser(req: object): string | undefined {
  const request = req as { user?: unknown; auth?: unknown };
  const passportId = readId(request.user, 'id');
  if (passportId !== undefined) return passportId;
  let auth = request.auth;
  // @clerk/express 1.x makes req.auth a function that returns the auth object.
  if (typeof auth === 'function') auth = (auth as () => unknown)();
  return readId(auth, 'sub') ?? readId(auth, 'userId');
}

function readId(holder: unknown, key: string): string | undefined {
  if (holder === null || typeof holder !== 'object') return undefined;
  const value = (holder as Record<string, unknown>)[key];
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

/**
 * Why an external id cannot be sent, or undefined when it can.
 * The SDK puts the id into the URL path: "" and "." become `GET /v2/identities/` (the list),
 * ".." becomes `GET /v2/`, and a "/" (even percent-encoded) may be routed as a path separator
 * by a proxy on the way. Such ids would reach some other endpoint, so they are refused here.
 */
export function externalIdProblem(externalId: unknown): string | undefined {
  if (typeof externalId !== 'string') return `the external id must be a string, received ${describe(externalId)}`;
  if (externalId.length === 0) return 'the external id is empty';
  if (externalId.length > maxExternalIdLength) {
    return `the external id is ${externalId.length} characters long; orq allows 1–${maxExternalIdLength}`;
  }
  if (externalId === '.' || externalId === '..') return 'the external id is a dot segment, which the URL would swallow';
  if (/[/\\]/.test(externalId)) return 'the external id contains a slash, which would change the API path';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what we refuse
  if (/[\u0000-\u001f\u007f]/.test(externalId)) return 'the external id contains control characters';
  if (externalId.trim() !== externalId) return 'the external id has leading or trailing whitespace';
  return undefined;
}

/** A user whose every field can be sent to orq; `dropped` lists what was left out and why. */
export interface CheckedUser {
  user: OrqUser;
  dropped: InvalidProfileFieldError[];
}

/** Validates what `getUser` returned. Throws InvalidUserError when the user must be skipped. */
export function checkUser(found: OrqUser | string): CheckedUser {
  if (typeof found === 'string') return { user: { externalId: checkExternalId(found) }, dropped: [] };
  if (found === null || typeof found !== 'object') {
    throw new InvalidUserError(`getUser returned ${describe(found)}; return an OrqUser object, an external id string, or undefined for anonymous requests.`);
  }
  const externalId = checkExternalId(found.externalId);
  const user: OrqUser = { externalId };
  const dropped: InvalidProfileFieldError[] = [];
  const drop = (field: string, why: string): void => {
    dropped.push(
      new InvalidProfileFieldError(`The ${field} of user ${preview(externalId)} was left out: ${why}.`, externalId, field),
    );
  };

  if (found.displayName !== undefined) {
    if (typeof found.displayName === 'string') user.displayName = found.displayName;
    else drop('displayName', `expected a string, received ${describe(found.displayName)}`);
  }
  if (found.email !== undefined) {
    if (isEmail(found.email)) user.email = found.email;
    else drop('email', `${describe(found.email)} is not an email address`);
  }
  if (found.avatarUrl !== undefined) {
    if (isHttpUrl(found.avatarUrl)) user.avatarUrl = found.avatarUrl;
    else drop('avatarUrl', `${describe(found.avatarUrl)} is not an absolute http(s) URL`);
  }
  if (found.tags !== undefined) {
    if (Array.isArray(found.tags) && found.tags.every((tag) => typeof tag === 'string')) user.tags = [...found.tags];
    else drop('tags', 'expected an array of strings');
  }
  if (found.metadata !== undefined) {
    const problem = metadataProblem(found.metadata);
    if (problem === undefined) user.metadata = found.metadata;
    else drop('metadata', problem);
  }
  return { user, dropped };
}

function checkExternalId(externalId: unknown): string {
  const problem = externalIdProblem(externalId);
  if (problem !== undefined) {
    const id = typeof externalId === 'string' ? externalId : undefined;
    throw new InvalidUserError(
      `User ${preview(externalId)} was skipped: ${problem}. Nothing was sent to orq; the request goes on without an identity.`,
      id,
    );
  }
  return externalId as string;
}

// Deliberately loose (one "@", a dot in the domain, no spaces): orq's check is "format: email", and a
// stricter rule here would drop addresses orq accepts.
function isEmail(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 254 && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value);
}

function isHttpUrl(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

function metadataProblem(metadata: unknown): string | undefined {
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    return `expected a plain object, received ${describe(metadata)}`;
  }
  const prototype: unknown = Object.getPrototypeOf(metadata);
  if (prototype !== Object.prototype && prototype !== null) return 'expected a plain object';
  try {
    JSON.stringify(metadata);
  } catch (error) {
    return `it cannot be sent as JSON (${(error as Error).message})`;
  }
  return undefined;
}

/** A short, safe rendering of a user-supplied value for messages. */
export function preview(value: unknown): string {
  if (typeof value !== 'string') return describe(value);
  const quoted = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return quoted;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return preview(value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
