// The framework-free heart of every adapter: getUser → cache (synchronous) or lookup → identity where the framework keeps
// request state → the rest of the request in the async context, with the failure policy applied on the way out.
import type { IncomingHttpHeaders } from 'node:http';
import { frameOfUser, requestStorage, storeWithIdentity, type RequestFrame, type RequestStore } from '../context.js';
import { OrqIdentityError } from '../errors/orq-identity-error.js';
import { OrqUnavailableError } from '../errors/orq-unavailable-error.js';
import { MisplacedMiddlewareWatch } from '../misplaced-middleware.js';
import type { OrqIdentityStats } from '../observability/stats.js';
import { OptionChecker, resolveResolverConfig, resolverOptionNames, type IdentityResolverOptions } from '../options.js';
import { Resolver, type CloseOptions, type IdentityResolver } from '../resolver.js';
import type { OrqIdentity, OrqUser } from '../types.js';
import { checkUser, errorText, externalIdOf, externalIdProblem, snapshotUser, type UserLike } from '../user.js';

/** The options every adapter takes; `TRequest` is what the framework calls a request (Express's req, Fastify's request, Hono's and Koa's context). */
export interface RequestIdentityOptions<TRequest> extends Omit<IdentityResolverOptions<TRequest>, 'onError'> {
  /** Finds the user of a request: an OrqUser, its external id (a string, or a safe integer sent as its decimal string), or null/undefined when anonymous. May be async; what it returns is read once, inside a try. Defaults to what the framework's usual auth layer leaves (see each adapter). */
  getUser?: ((request: TRequest) => UserLike | Promise<UserLike>) | undefined;
  /** The longest a request waits for orq, in milliseconds; the lookup goes on in the background. Defaults to `2_000`. */
  timeoutMs?: number | undefined;
  /** When orq fails, let the request go on without an identity (`true`) or fail it with an OrqUnavailableError (status 503) (`false`). Defaults to `true`. */
  failOpen?: boolean | undefined;
  /** Run the rest of the request inside an AsyncLocalStorage context holding this request's user and identity, so `currentOrqUser()`, `currentOrqIdentity()` and the attribution helpers work downstream. Defaults to `true`. */
  context?: boolean | undefined;
  /** Requests for which to do nothing at all (health checks, static files): no `getUser`, no lookup, nothing attached. Synchronous; a throw goes to the framework's error handling. Without it no request is skipped. Defaults to `undefined`. */
  skip?: ((request: TRequest) => boolean) | undefined;
  /** Receives every failure and every skipped user, with the request it concerns (`undefined` for reports that concern no request: the shared store failing, a fleet-wide pause). Defaults to one concise `console.warn` line per event. */
  onError?: ((error: OrqIdentityError, request: TRequest | undefined) => void) | undefined;
}

/** The names the core reads, for the unknown-option check; an adapter adds its own. */
export const requestIdentityOptionNames = [...resolverOptionNames, 'getUser', 'timeoutMs', 'failOpen', 'context', 'skip'] as const;

/** The headers that tell a signed-in request from an anonymous one, for the misplaced-adapter warning. */
export type SignInHeaders = Pick<IncomingHttpHeaders, 'authorization' | 'cookie'>;

/**
 * What an adapter tells the core about its framework. `TNext` continues the request: Express's `next`, Fastify's
 * `done`, Hono's and Koa's `next`; what it returns (a promise in Hono and Koa) is what the adapter returns.
 */
export interface FrameworkBinding<TRequest, TNext extends (error?: unknown) => unknown> {
  /** Stores the identity where the framework keeps request state (`req.orqIdentity`, `c.set`, `ctx.state`). */
  attach(request: TRequest, identity: OrqIdentity): void;
  /** Continues the request failed by orq being unavailable under `failOpen: false`: the framework's way to a 503. */
  failClosed(error: OrqUnavailableError, next: TNext): ReturnType<TNext>;
  /** The request's Authorization and Cookie headers; read only while no user has been found yet. */
  signInHeaders(request: TRequest): SignInHeaders;
  /** How to put the adapter after the auth layer, in the framework's words, for the misplaced-adapter warning; defaults to Express's. */
  readonly misplacedFix?: string;
}

/** One adapter instance's core: `handle` once per request, the rest for shutdown and health endpoints. */
export interface RequestIdentity<TRequest, TNext extends (error?: unknown) => unknown> {
  /** Answers from the cache synchronously (returning what `next` returns) or starts the lookup (returning a promise of it). */
  handle(request: TRequest, next: TNext): ReturnType<TNext> | Promise<ReturnType<TNext>>;
  close(options?: CloseOptions): Promise<{ pending: number }>;
  stats(): OrqIdentityStats;
  readonly resolver: IdentityResolver<TRequest>;
}

/** Builds the core of one adapter instance; throws a TypeError naming the option when one is wrong. */
export function createRequestIdentity<TRequest, TNext extends (error?: unknown) => unknown>(
  options: RequestIdentityOptions<TRequest>,
  binding: FrameworkBinding<TRequest, TNext>,
  defaultGetUser: (request: TRequest) => UserLike,
  optionNames: readonly string[] = requestIdentityOptionNames,
  caller = 'orqIdentity',
): RequestIdentity<TRequest, TNext> {
  type Result = ReturnType<TNext>;
  const config = resolveResolverConfig<TRequest>(options, caller, optionNames);
  const check = new OptionChecker(caller);
  const getUser = check.func('getUser', options.getUser) ?? defaultGetUser;
  const timeoutMs = check.milliseconds('timeoutMs', options.timeoutMs, 2_000);
  const failOpen = check.boolean('failOpen', options.failOpen, true);
  const storage = check.boolean('context', options.context, true) ? requestStorage : undefined;
  const skip = check.func('skip', options.skip);
  const watch = new MisplacedMiddlewareWatch(caller, binding.misplacedFix);
  const resolver = new Resolver<TRequest>(config);
  const { attach: store, failClosed, signInHeaders } = binding;

  /**
   * Every way out but the hot path's goes through here: downstream runs in a context holding exactly this
   * request's user (and identity), or nothing. Continuing in the caller's context instead would let a request
   * resumed from another request's callback (a callback-style pool handing over a freed connection) inherit
   * that request's user.
   */
  function proceed(frame: RequestStore | undefined, next: TNext): Result {
    // `next(undefined)` is `next()` in Express 4 and 5 (and to every other framework); passing it as run's
    // argument allocates no closure.
    if (storage === undefined) return next(undefined) as Result;
    return storage.run<unknown, [unknown]>(frame, next, undefined) as Result;
  }

  function proceedFailed(frame: RequestStore | undefined, next: TNext, error: OrqUnavailableError): Result {
    if (storage === undefined) return failClosed(error, next);
    return storage.run(frame, failClosed, error, next);
  }

  /** The hot path: a cached user's store is its identity, shared by all its requests, so nothing is allocated. */
  function attach(request: TRequest, identity: OrqIdentity, next: TNext): Result {
    store(request, identity);
    if (storage === undefined) return next() as Result;
    return storage.run(identity, next) as Result;
  }

  /** The context frame of a user not yet matched to an identity, or undefined when the user cannot be sent to orq. */
  function userFrame(user: OrqUser | string): RequestFrame | undefined {
    if (storage === undefined) return undefined;
    try {
      return frameOfUser(checkUser(user).user);
    } catch {
      // The resolver reports the invalid user (once per window); here it only means "no user downstream": undefined.
    }
  }

  /** Everything after getUser, for a user given at once or through a promise alike. Never throws, whatever `found` does when read. */
  function attachUser(request: TRequest, found: unknown, next: TNext): Result | Promise<Result> {
    if (found === null || found === undefined) {
      if (watch.active) watch.noUserFound(signInHeaders(request));
      return proceed(undefined, next);
    }
    if (watch.active) watch.userFound();
    // Read once: a getter or Proxy is never asked twice, and a throwing one is refused (InvalidUserError), not thrown.
    const externalId = externalIdOf(found);
    if (typeof externalId === 'string') {
      // The hot path: a cached user is attached synchronously, with no promise and no allocation.
      const identity = resolver.cached(externalId, request);
      if (identity !== undefined) return attach(request, identity, next);
      // During an outage, pass straight through: the failure was reported when it began, and making an
      // error and a promise per request would slow the app exactly when orq is down. An unusable id still
      // goes the long way, to be reported.
      if (failOpen && resolver.isBackingOff(externalId) && externalIdProblem(externalId) === undefined) {
        return proceed(userFrame(snapshotUser(found, externalId) as OrqUser | string), next);
      }
    }
    return lookUp(request, snapshotUser(found, externalId) as OrqUser | string, next);
  }

  /** The slow path, kept out of attachUser so the hot path stays small enough to inline. */
  function lookUp(request: TRequest, user: OrqUser | string, next: TNext): Promise<Result> {
    // The user is in the context before orq answers: attribution never waits on the identity endpoints.
    const frame = userFrame(user);
    // Never resolve(): a string id's cache miss is counted already, and an id that is not a string (which resolve()
    // would not look up in the cache either) has nothing to look up there.
    return resolver.resolveUncached(user, request, timeoutMs).then(
      (identity) => {
        store(request, identity);
        // With `context: false` the frame is undefined, so this is the identity itself: nothing is built.
        return proceed(storeWithIdentity(frame, identity), next);
      },
      (error: unknown) => {
        if (!failOpen && error instanceof OrqUnavailableError) return proceedFailed(frame, next, error);
        return proceed(frame, next);
      },
    );
  }

  /** `error` undefined: getUser's promise did not settle within timeoutMs. */
  function reportGetUserFailure(request: TRequest, error: unknown): void {
    const what =
      error === undefined ? `getUser's promise did not settle within timeoutMs (${timeoutMs} ms)` : `getUser threw (${errorText(error)})`;
    resolver.report(
      new OrqIdentityError(`${what}; the request goes on without an identity.`, { code: 'ORQ_IDENTITY_GET_USER_FAILED', cause: error }),
      request,
    );
  }

  /** getUser gave a thenable: wait for it, at most timeoutMs, then go on as for a user given at once. */
  function awaitUser(request: TRequest, thenable: unknown, then: unknown, next: TNext): Promise<Result> {
    return new Promise<Result>((settle, fail) => {
      // A promise that never settles must not hold the request: after timeoutMs it goes on without a user.
      let settled = false;
      const finish = (run: () => Result | Promise<Result>): void => {
        try {
          settle(run());
        } catch (error) {
          fail(error);
        }
      };
      const timer = setTimeout(() => {
        settled = true;
        reportGetUserFailure(request, undefined);
        finish(() => proceed(undefined, next));
      }, timeoutMs);
      new Promise<unknown>((resolve, reject) => {
        (then as (onFulfilled: (value: unknown) => void, onRejected: (reason: unknown) => void) => unknown).call(thenable, resolve, reject);
      }).then(
        (user) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          finish(() => attachUser(request, user, next));
        },
        (error: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reportGetUserFailure(request, error);
          finish(() => proceed(undefined, next));
        },
      );
    });
  }

  function handle(request: TRequest, next: TNext): Result | Promise<Result> {
    // skip is the app's own routing decision, like a route path: a throw goes to the framework's error handling.
    // Still run downstream in no frame: a skipped request must not inherit whoever resumed it.
    if (skip !== undefined && skip(request)) return proceed(undefined, next);
    let found: unknown;
    try {
      found = getUser(request);
      // `then` is read once, inside the try: a thenable Proxy or getter may throw, and must not be asked twice.
      const then = found !== null && typeof found === 'object' ? (found as { then?: unknown }).then : undefined;
      if (typeof then === 'function') return awaitUser(request, found, then, next);
    } catch (error) {
      reportGetUserFailure(request, error);
      return proceed(undefined, next);
    }
    return attachUser(request, found, next);
  }

  return {
    handle,
    close: (closeOptions?: CloseOptions) => resolver.close(closeOptions),
    stats: () => resolver.stats(),
    resolver,
  };
}
