// The identity of the request being served, reachable from anywhere downstream without passing `req` around.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { OrqIdentity } from './types.js';

// One store per process, not per copy of this module: an app that loads both our ESM and CJS builds
// (or two installs) must still see in one what the middleware set through the other.
const storageKey = Symbol.for('express-orq-identity.storage');
const holder = globalThis as { [storageKey]?: AsyncLocalStorage<OrqIdentity> };

/** @internal The store the middleware runs each request's downstream chain in. */
export const identityStorage: AsyncLocalStorage<OrqIdentity> = (holder[storageKey] ??= new AsyncLocalStorage<OrqIdentity>());

/**
 * The identity of the request this code is running for (across `await`, timers and streams),
 * or undefined outside a request, for anonymous requests, or when orq could not be reached.
 */
export function currentOrqIdentity(): OrqIdentity | undefined {
  return identityStorage.getStore();
}

/** Runs `fn` with `identity` as the current one: for background jobs and queues that act for a user. */
export function runWithOrqIdentity<T>(identity: OrqIdentity, fn: () => T): T {
  return identityStorage.run(identity, fn);
}
