// Reads X-RateLimit-* off the SDK's identity answers. The SDK returns bodies, not headers, so the one way to see
// them is its own per-client hooks, which run after every answer (success or error) with the raw Response.
import { readRateLimit, type RateLimitInfo } from '../calls/rate-limit.js';

/** The operations whose answers count against the identity endpoints' limit (deployments have limits of their own). */
const identityOperations = new Set(['RetrieveIdentity', 'CreateIdentity', 'UpdateIdentity']);

interface SdkHooks {
  registerAfterSuccessHook(hook: { afterSuccess(context: { operationID: string }, response: Response): Response }): void;
  registerAfterErrorHook(hook: {
    afterError(context: { operationID: string }, response: Response | null, error: unknown): { response: Response | null; error: unknown };
  }): void;
}

/** What is read of the app's client: its identities sub-client, whose options carry the SDK's hooks. */
interface HookedClient {
  readonly identities: object;
}

/** One set of listeners per client, however many resolvers share it: the hooks are registered once. */
const listenersByClient = new WeakMap<object, Set<(info: RateLimitInfo) => void>>();

/**
 * Calls `listener` with what each identity answer of `client` says about the limit; returns how to stop. A client
 * with no hooks to register with (not @orq-ai/node 4's) tells nothing: the budget then learns from 429s alone.
 */
export function observeSdkRateLimits(client: HookedClient, listener: (info: RateLimitInfo) => void): () => void {
  let listeners = listenersByClient.get(client);
  if (listeners === undefined) {
    const hooks = hooksOf(client);
    if (hooks === undefined) return noop;
    const created = new Set<(info: RateLimitInfo) => void>();
    const tell = (operationID: string, response: Response | null): void => {
      if (response === null || !identityOperations.has(operationID)) return;
      const info = readRateLimit(response.headers);
      if (info === undefined) return;
      for (const each of created) each(info);
    };
    try {
      hooks.registerAfterSuccessHook({
        afterSuccess(context, response) {
          tell(context.operationID, response);
          return response;
        },
      });
      hooks.registerAfterErrorHook({
        afterError(context, response, error) {
          tell(context.operationID, response);
          return { response, error };
        },
      });
    } catch {
      return noop;
    }
    listeners = created;
    listenersByClient.set(client, listeners);
  }
  const own = listeners;
  own.add(listener);
  return () => own.delete(listener);
}

function noop(): void {}

function hooksOf(client: HookedClient): SdkHooks | undefined {
  try {
    // The identities sub-client makes our calls; it shares the parent's hooks in 4.x, read here so either way is right.
    const options = (client.identities as unknown as { _options?: { hooks?: unknown } })._options;
    const hooks = options?.hooks as Partial<SdkHooks> | undefined;
    if (typeof hooks?.registerAfterSuccessHook === 'function' && typeof hooks.registerAfterErrorHook === 'function') return hooks as SdkHooks;
  } catch {
    // A client whose internals cannot be read: no hooks.
  }
  return undefined;
}
