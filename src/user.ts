// Getting the user out of a request, and checking it against orq's documented limits before anything is sent.
import { InvalidProfileFieldError } from './errors/invalid-profile-field-error.js';
import { InvalidUserError } from './errors/invalid-user-error.js';
import { profileFields, type OrqUser, type ProfileField } from './types.js';

/**
 * What `getUser` may return: a user, its external id, or nothing for an anonymous request. An external id
 * may be a safe integer (`42`), which is sent as its decimal string (`"42"`), wherever it is given.
 */
export type UserLike = OrqUser | UserWithNumericId | string | number | null | undefined;

/** An OrqUser whose external id is a safe integer, as many databases hand it out. */
export type UserWithNumericId = Omit<OrqUser, 'externalId'> & { externalId: number };

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

/** @internal A string (or safe-integer) id at `holder[key]`, or undefined. */
export function readId(holder: unknown, key: string): string | undefined {
  if (holder === null || typeof holder !== 'object') return undefined;
  const value = normaliseId((holder as Record<string, unknown>)[key]);
  return typeof value === 'string' ? value : undefined;
}

/** A safe integer id becomes its decimal string, so `42`, `"42"` and `{ externalId: 42 }` are one user; anything else is left for the checks. */
function normaliseId(value: unknown): unknown {
  return Number.isSafeInteger(value) ? String(value) : value;
}

/**
 * A property of a user object that could not be read: its getter (or a Proxy trap) threw. Kept as a value
 * so the user is read exactly once, and the failure is reported where the field is checked.
 */
class Unreadable {
  constructor(readonly error: unknown) {}
}

/**
 * The external id of what `getUser` returned, read once and never throwing: a string (safe integers
 * included) for the cache to look up, or whatever else was there for `checkUser` to refuse.
 * Allocation-free for a string, a cached number, or an object with a string id: this runs on every request.
 */
export function externalIdOf(found: unknown): unknown {
  if (typeof found === 'string') return found;
  if (found === null || typeof found !== 'object') return normaliseId(found);
  try {
    return normaliseId((found as { externalId?: unknown }).externalId);
  } catch (error) {
    return new Unreadable(error);
  }
}

/**
 * A plain copy of what `getUser` returned, each property read exactly once and inside a try: getters, Proxies
 * and revoked Proxies can neither throw past us nor answer differently the second time they are asked.
 * @param externalId the id already read by externalIdOf, so it is not read again
 */
export function snapshotUser(found: unknown, externalId: unknown = externalIdOf(found)): unknown {
  if (found === null || typeof found !== 'object') return externalId;
  const copy: Record<string, unknown> = { externalId };
  for (const field of profileFields) {
    try {
      // An absent field is copied as undefined, which checkUser skips like a missing one.
      copy[field] = (found as Record<string, unknown>)[field];
    } catch (error) {
      copy[field] = new Unreadable(error);
    }
  }
  return copy;
}

/** `instanceof` asks for the prototype, which a revoked Proxy refuses with a TypeError. */
function isUnreadable(value: unknown): value is Unreadable {
  try {
    return value instanceof Unreadable;
  } catch {
    return false;
  }
}

/** Why an external id cannot be sent, or undefined when it can. Safe integers are accepted as their decimal string. */
export function externalIdProblem(externalId: unknown): string | undefined {
  const id = normaliseId(externalId);
  if (isUnreadable(id)) return `reading the external id threw (${errorText(id.error)})`;
  if (typeof id !== 'string') {
    return `the external id must be a string or a safe integer, received ${describe(id)}`;
  }
  if (id.length === 0) return 'the external id is empty';
  if (id.length > maxExternalIdLength) {
    return `the external id is ${id.length} characters long; orq allows 1–${maxExternalIdLength}`;
  }
  // The SDK puts the id into the URL path: "." and ".." are dot segments that the URL would swallow, reaching
  // `GET /v2/identities/` (the list) or `GET /v2/`. A "/" is percent-encoded as %2F and stays one segment;
  // should a proxy decode it on the way, orq answers for the wrong path and ownership verification
  // (the answer's external_id must equal the id asked for) keeps any other identity out.
  if (id === '.' || id === '..') return 'the external id is a dot segment, which the URL would swallow';
  // A lone UTF-16 surrogate cannot be percent-encoded: the SDK's encodeURIComponent throws before sending.
  if (!(id as unknown as WellFormedString).isWellFormed()) return 'the external id contains a lone UTF-16 surrogate (not well-formed Unicode)';
  // C0, DEL and C1 controls: invisible in logs and dashboards, and a way to forge log lines.
  // eslint-disable-next-line no-control-regex -- control characters are exactly what we refuse
  if (/[\u0000-\u001f\u007f-\u009f]/.test(id)) return 'the external id contains control characters';
  if (id.trim() !== id) return 'the external id has leading or trailing whitespace';
  return undefined;
}

// Node 20 has String.prototype.isWellFormed; the ES2022 lib we compile against does not declare it.
interface WellFormedString {
  isWellFormed(): boolean;
}

/** A user whose every field can be sent to orq; `dropped` lists what was left out and why. */
export interface CheckedUser {
  user: OrqUser;
  dropped: InvalidProfileFieldError[];
}

/**
 * Validates what `getUser` returned, reading it once (see snapshotUser). Throws InvalidUserError when the
 * user must be skipped; never throws anything else, whatever the object does when read.
 */
export function checkUser(found: unknown): CheckedUser {
  if (typeof found === 'string' || typeof found === 'number') return { user: { externalId: checkExternalId(found) }, dropped: [] };
  if (found === null || typeof found !== 'object') {
    throw new InvalidUserError(
      `getUser returned ${describe(found)}; return an OrqUser object, an external id (a string or a safe integer), or undefined for anonymous requests.`,
    );
  }
  const read = snapshotUser(found) as Record<string, unknown>;
  const externalId = checkExternalId(read.externalId);
  const user: OrqUser = { externalId };
  const dropped: InvalidProfileFieldError[] = [];
  for (const field of profileFields) {
    const value = read[field];
    if (value === undefined) continue;
    let problem: string | undefined;
    try {
      problem = value instanceof Unreadable ? `reading it threw (${errorText(value.error)})` : copyField(user, field, value);
    } catch (error) {
      // A Proxy can throw from traps the checks touch (isArray, getPrototypeOf, toJSON): the field is unusable.
      problem = `checking it threw (${errorText(error)})`;
    }
    if (problem !== undefined) {
      dropped.push(new InvalidProfileFieldError(`The ${field} of user ${preview(externalId)} was left out: ${problem}.`, externalId, field));
    }
  }
  return { user, dropped };
}

/** Copies one profile field onto `user` when orq would accept it; otherwise says why not. */
function copyField(user: OrqUser, field: ProfileField, value: unknown): string | undefined {
  switch (field) {
    case 'displayName':
      if (!isText(value)) return `expected a well-formed string, received ${describe(value)}`;
      user.displayName = value;
      return undefined;
    case 'email':
      if (!isEmail(value)) return `${describe(value)} is not an email address`;
      user.email = value;
      return undefined;
    case 'avatarUrl':
      if (!isHttpUrl(value)) return `${describe(value)} is not an absolute http(s) URL`;
      user.avatarUrl = value;
      return undefined;
    case 'tags': {
      if (!Array.isArray(value)) return 'expected an array of strings';
      // Copied before checking, so a getter on an element cannot pass the check and then change.
      const tags: unknown[] = Array.from(value as unknown[]);
      if (!tags.every(isText)) return 'expected an array of strings';
      user.tags = tags as string[];
      return undefined;
    }
    case 'metadata': {
      const copy = metadataCopy(value);
      if (typeof copy === 'string') return copy;
      user.metadata = copy;
      return undefined;
    }
  }
}

function checkExternalId(externalId: unknown): string {
  const id = normaliseId(externalId);
  const problem = externalIdProblem(id);
  if (problem !== undefined) {
    // An id given alone is a string or a number, so only a user object can lack one.
    const who =
      typeof id === 'string' ? `User ${preview(id)}`
      : id === undefined ? 'A user without an `externalId`'
      : 'A user';
    throw new InvalidUserError(
      `${who} was skipped: ${problem}. Nothing was sent to orq; the request goes on without an identity.`,
      typeof id === 'string' ? id : undefined,
    );
  }
  return id as string;
}

/** A string that can be percent-encoded (no lone UTF-16 surrogate). */
export function isText(value: unknown): value is string {
  return typeof value === 'string' && (value as unknown as WellFormedString).isWellFormed();
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

/**
 * A plain JSON copy of the metadata, or why there is none: the copy is what is sent and compared, so the
 * app's object (getters, toJSON, later changes) is read once, here.
 */
function metadataCopy(metadata: unknown): Record<string, unknown> | string {
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    return `expected a plain object, received ${describe(metadata)}`;
  }
  const prototype: unknown = Object.getPrototypeOf(metadata);
  if (prototype !== Object.prototype && prototype !== null) return 'expected a plain object';
  let text: string | undefined;
  try {
    text = JSON.stringify(metadata) as string | undefined;
  } catch (error) {
    return `it cannot be sent as JSON (${errorText(error)})`;
  }
  // A toJSON may turn the object into anything, or into nothing at all.
  const copy: unknown = text === undefined ? undefined : JSON.parse(text);
  if (copy === null || typeof copy !== 'object' || Array.isArray(copy)) return 'its JSON is not an object';
  return copy as Record<string, unknown>;
}

/** A short, safe rendering of a user-supplied value for messages. */
export function preview(value: unknown): string {
  if (typeof value !== 'string') return describe(value);
  // JSON.stringify escapes C0 controls and lone surrogates; C1 controls and line separators are escaped too,
  // so no id can break or forge a log line.
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value).replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (isArraySafely(value)) return 'an array';
  if (typeof value === 'string') return preview(value);
  // Never String(value) of an object or function: a custom toString is user code, and a function prints its source.
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'bigint') return `bigint ${value}n`;
  return `${typeof value} ${String(value)}`;
}

/** Array.isArray throws on a revoked Proxy; a description must not. */
function isArraySafely(value: unknown): boolean {
  try {
    return Array.isArray(value);
  } catch {
    return false;
  }
}

/** The message of something thrown, short and without running user code beyond reading `message` once. */
export function errorText(error: unknown): string {
  let message: unknown;
  try {
    message = error instanceof Error ? error.message : typeof error === 'string' ? error : describe(error);
  } catch {
    // Left undefined: reading it (a getter, a Proxy trap) threw.
  }
  if (typeof message !== 'string') return 'an unreadable error';
  return message.length > 160 ? `${message.slice(0, 160)}…` : message;
}
