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

const frameBrand = Symbol.for('express-orq-identity.request-frame');

/**
 * What the async context holds for a request whose user is known but whose identity came another way than
 * from the cache: a user without identity (orq slow, failing, circuit open), or a user with one just looked
 * up. Frozen, so nothing downstream can change what the request's other code sees.
 */
export interface RequestFrame {
  readonly [frameBrand]: true;
  /** The checked user: known as soon as `getUser` gave a valid one, whether or not orq answered. */
  readonly user: OrqRequestUser;
  /** The registered identity, or undefined while orq has not answered. */
  readonly identity?: OrqIdentity | undefined;
}

/**
 * A cached user's context is its identity itself (frozen and shared by all its requests), so the hot path
 * stores what it already holds and allocates nothing; the user is derived from it only when asked for.
 */
export type RequestStore = OrqIdentity | RequestFrame;

function isFrame(store: RequestStore): store is RequestFrame {
  return (store as Partial<RequestFrame>)[frameBrand] === true;
}

// One store per process, not per copy of this module: an app that loads both our ESM and CJS builds
// (or two installs) must still see in one what the middleware set through the other. The key names the
// store's shape: a copy that only ever stored bare identities must not read frames as identities.
const storageKey = Symbol.for('express-orq-identity.request-store.v2');
const holder = globalThis as { [storageKey]?: AsyncLocalStorage<RequestStore | undefined> };

/** @internal The store the middleware runs each request's downstream chain in. */
export const requestStorage: AsyncLocalStorage<RequestStore | undefined> = (holder[storageKey] ??= new AsyncLocalStorage());

/** @internal The frame of a checked user whose identity is not known (yet). */
export function frameOfUser(user: OrqUser): RequestFrame {
  const frozen = Object.freeze(user.tags === undefined ? { ...user } : { ...user, tags: Object.freeze([...user.tags]) });
  return Object.freeze({ [frameBrand]: true as const, user: frozen });
}

/**
 * @internal The store once orq answered: the user as `getUser` gave it this time (fresher than the identity's
 * profile, which syncs in the background), with the identity; the identity alone when the user is unknown.
 */
export function storeWithIdentity(frame: RequestFrame | undefined, identity: OrqIdentity): RequestStore {
  return frame === undefined ? identity : Object.freeze({ [frameBrand]: true as const, user: frame.user, identity });
}

// Built at most once per identity, when first asked for: every request of a cached user shares it.
const usersByIdentity = new WeakMap<OrqIdentity, OrqRequestUser>();

/** @internal The user of the request a store belongs to. */
export function userOfStore(store: RequestStore): OrqRequestUser {
  if (isFrame(store)) return store.user;
  let user = usersByIdentity.get(store);
  if (user === undefined) {
    user = userOfIdentity(store);
    usersByIdentity.set(store, user);
  }
  return user;
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

/** @internal The external id of the current user, without building the user: what the identity header needs. */
export function currentExternalId(): string | undefined {
  const store = requestStorage.getStore();
  if (store === undefined) return undefined;
  return isFrame(store) ? store.user.externalId : store.externalId;
}

/**
 * The identity of the request this code is running for (across `await`, timers and streams),
 * or undefined outside a request, for anonymous requests, or when orq could not be reached in time.
 */
export function currentOrqIdentity(): OrqIdentity | undefined {
  const store = requestStorage.getStore();
  return store === undefined || !isFrame(store) ? store : store.identity;
}

/**
 * The user of the request this code is running for: set as soon as `getUser` gave a valid user, before
 * (and whether or not) orq registered the identity, so LLM calls can be attributed during an outage too.
 * Undefined outside a request and for anonymous requests or invalid users. Frozen.
 */
export function currentOrqUser(): OrqRequestUser | undefined {
  const store = requestStorage.getStore();
  return store === undefined ? undefined : userOfStore(store);
}

/** Runs `fn` with `identity` (and its user) as the current one: for background jobs and queues that act for a user. */
export function runWithOrqIdentity<T>(identity: OrqIdentity, fn: () => T): T {
  return requestStorage.run(identity, fn);
}

/**
 * Runs `fn` with `user` (an OrqUser or an external id) as the current user and no identity: for jobs that know
 * who they act for but not the identity. Throws InvalidUserError when the user could not be sent to orq.
 */
export function runWithOrqUser<T>(user: OrqUser | string, fn: () => T): T {
  return requestStorage.run(frameOfUser(checkUser(user).user), fn);
}
