// The request being served, reachable from anywhere downstream without passing `req` around: its user, and its identity once orq registered it.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { OrqIdentity, OrqUser } from './types.js';
import { checkUser } from './user.js';

/** The user of the request being served, checked and frozen: what attribution needs. */
export interface OrqRequestUser {
  /** The app's id of the user; orq's `external_id`. */
  readonly externalId: string;
  readonly displayName?: string | undefined;
  readonly email?: string | undefined;
  readonly avatarUrl?: string | undefined;
  readonly tags?: readonly string[] | undefined;
  readonly metadata?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * What the async context holds for one request. Frozen: one frame may serve many requests (the cached
 * path reuses one per identity), and none may change what another sees.
 */
export interface RequestFrame {
  /** The checked user: known as soon as `getUser` gave a valid one, whether or not orq answered. */
  readonly user: OrqRequestUser;
  /** The registered identity, or undefined while orq has not answered (slow, failing, circuit open). */
  readonly identity?: OrqIdentity | undefined;
}

// One store per process, not per copy of this module: an app that loads both our ESM and CJS builds
// (or two installs) must still see in one what the middleware set through the other. The key names the
// frame's shape: a copy that stored bare identities under the old key must not be read as frames.
const storageKey = Symbol.for('express-orq-identity.request-frame.v1');
const holder = globalThis as { [storageKey]?: AsyncLocalStorage<RequestFrame | undefined> };

/** @internal The store the middleware runs each request's downstream chain in. */
export const requestStorage: AsyncLocalStorage<RequestFrame | undefined> = (holder[storageKey] ??= new AsyncLocalStorage());

// A cached identity serves every request of its user: its frame is built once, so the hot path allocates nothing.
const framesByIdentity = new WeakMap<OrqIdentity, RequestFrame>();

/** @internal The frame of a registered identity, the same object every time for the same identity. */
export function frameOfIdentity(identity: OrqIdentity): RequestFrame {
  let frame = framesByIdentity.get(identity);
  if (frame === undefined) {
    frame = Object.freeze({ user: userOfIdentity(identity), identity });
    framesByIdentity.set(identity, frame);
  }
  return frame;
}

/** @internal The frame of a checked user whose identity is not known (yet). */
export function frameOfUser(user: OrqUser): RequestFrame {
  return Object.freeze({ user: Object.freeze(user.tags === undefined ? { ...user } : { ...user, tags: Object.freeze([...user.tags]) }) });
}

/**
 * @internal The frame once orq answered: the user as `getUser` gave it this time (fresher than the identity's
 * profile, which syncs in the background), with the identity.
 */
export function frameWithIdentity(frame: RequestFrame | undefined, identity: OrqIdentity): RequestFrame {
  return frame === undefined ? frameOfIdentity(identity) : Object.freeze({ user: frame.user, identity });
}

function userOfIdentity(identity: OrqIdentity): OrqRequestUser {
  const user: { -readonly [K in keyof OrqRequestUser]: OrqRequestUser[K] } = { externalId: identity.externalId };
  if (identity.displayName !== undefined) user.displayName = identity.displayName;
  if (identity.email !== undefined) user.email = identity.email;
  if (identity.avatarUrl !== undefined) user.avatarUrl = identity.avatarUrl;
  // Both are frozen already: the identity owns them.
  if (identity.tags !== undefined) user.tags = identity.tags;
  if (identity.metadata !== undefined) user.metadata = identity.metadata;
  return Object.freeze(user);
}

/**
 * The identity of the request this code is running for (across `await`, timers and streams),
 * or undefined outside a request, for anonymous requests, or when orq could not be reached in time.
 */
export function currentOrqIdentity(): OrqIdentity | undefined {
  return requestStorage.getStore()?.identity;
}

/**
 * The user of the request this code is running for: set as soon as `getUser` gave a valid user, before
 * (and whether or not) orq registered the identity, so LLM calls can be attributed during an outage too.
 * Undefined outside a request and for anonymous requests or invalid users. Frozen.
 */
export function currentOrqUser(): OrqRequestUser | undefined {
  return requestStorage.getStore()?.user;
}

/** Runs `fn` with `identity` (and its user) as the current one: for background jobs and queues that act for a user. */
export function runWithOrqIdentity<T>(identity: OrqIdentity, fn: () => T): T {
  return requestStorage.run(frameOfIdentity(identity), fn);
}

/**
 * Runs `fn` with `user` (an OrqUser or an external id) as the current user and no identity: for jobs that know
 * who they act for but not the identity. Throws InvalidUserError when the user could not be sent to orq.
 */
export function runWithOrqUser<T>(user: OrqUser | string, fn: () => T): T {
  return requestStorage.run(frameOfUser(checkUser(user).user), fn);
}
