// Notices a second live instance for the same orq configuration: each has its own cache, breaker and limits,
// so a new user costs a lookup per instance (3 instances: 4 calls for one user) and no limit holds for the app.
import { createHash } from 'node:crypto';

/*
 * Why a warning and not one shared core per configuration: instances may differ in everything but the key
 * (cache size, ttl, timeouts, onError, metrics), and a shared core would have to pick one instance's settings
 * silently and tie their lifecycles (whose close() stops lookups?). A warning keeps every instance doing what its
 * options say, and points at the fix that also saves the memory: create once, reuse.
 */

/** What identifies "the same orq": a symbol per client object, or a string for a key and server. */
export type OrqTarget = string | symbol;

interface Registry {
  open: Map<OrqTarget, number>;
  warned: Set<OrqTarget>;
  clientTargets: WeakMap<object, symbol>;
}

// One registry per process, not per copy of this module (ESM and CJS builds both loaded), as for the context.
// Versioned: a copy of an older release in the same process keeps its own registry, of another shape.
const registryKey = Symbol.for('express-orq-identity.instances/2');
const holder = globalThis as { [registryKey]?: Registry };
const registry: Registry = (holder[registryKey] ??= { open: new Map(), warned: new Set(), clientTargets: new WeakMap() });

/** What identifies "the same orq" for two instances: the very client object, or the key and server (the key hashed). */
export function orqTarget(client: object | undefined, apiKey: string | undefined, serverURL: string | undefined): OrqTarget {
  if (client !== undefined) {
    let target = registry.clientTargets.get(client);
    if (target === undefined) {
      target = Symbol();
      registry.clientTargets.set(client, target);
    }
    return target;
  }
  // Hashed: the registry is reachable from the whole process, and the key must not be.
  return `key:${createHash('sha256').update(String(apiKey)).digest('hex')}@${String(serverURL)}`;
}

/** Counts an instance as open; warns once per configuration when another one is already open. Returns its release. */
export function openInstance(target: OrqTarget, caller: string): () => void {
  const open = registry.open.get(target) ?? 0;
  registry.open.set(target, open + 1);
  if (open > 0 && !registry.warned.has(target)) {
    registry.warned.add(target);
    process.emitWarning(
      `${caller}: another instance for the same orq configuration is already running. Each instance has its own cache, ` +
        'circuit breaker and concurrency limit, so every new user costs a lookup per instance and the limits do not hold for the app. ' +
        "Create the middleware once at start-up and reuse it (`const identity = orqIdentity(); app.get('/x', auth, identity, handler)`); " +
        'for work outside requests use `identity.resolver`. Call `close()` on an instance you replace.',
      { code: 'ORQ_IDENTITY_SEVERAL_INSTANCES' },
    );
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const left = (registry.open.get(target) ?? 1) - 1;
    if (left > 0) registry.open.set(target, left);
    else registry.open.delete(target);
  };
}
