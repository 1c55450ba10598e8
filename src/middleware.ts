// The Express adapter: reads the user, attaches the identity to `req` and to the async context, and never lets orq fail the request unless asked.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { frameOfUser, requestStorage, storeWithIdentity, type RequestFrame, type RequestStore } from './context.js';
import { OrqIdentityError } from './errors/orq-identity-error.js';
import { OrqUnavailableError } from './errors/orq-unavailable-error.js';
import { MisplacedMiddlewareWatch } from './misplaced-middleware.js';
import type { OrqIdentityStats } from './observability/stats.js';
import { OptionChecker, resolveResolverConfig, resolverOptionNames, type IdentityResolverOptions } from './options.js';
import { Resolver, type CloseOptions, type IdentityResolver } from './resolver.js';
import type { OrqIdentity, OrqUser } from './types.js';
import { checkUser, defaultGetUser, errorText, externalIdOf, externalIdProblem, snapshotUser, type UserLike } from './user.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- Express's own augmentation point
  namespace Express {
    interface Request {
      /** The orq identity of the authenticated user, set by `orqIdentity()`; undefined when there is none. */
      orqIdentity?: OrqIdentity | undefined;
    }
  }
}

export interface OrqIdentityOptions extends Omit<IdentityResolverOptions<Request>, 'onError'> {
  /** Finds the user of a request: an OrqUser, its external id (a string, or a safe integer sent as its decimal string), or null/undefined when anonymous. May be async; what it returns is read once, inside a try. Defaults to `defaultGetUser` (passport `req.user.id`, express-jwt `req.auth.sub`, Clerk `req.auth.userId`). */
  getUser?: ((req: Request) => UserLike | Promise<UserLike>) | undefined;
  /** The longest a request waits for orq, in milliseconds; the lookup goes on in the background. Defaults to `2_000`. */
  timeoutMs?: number | undefined;
  /** When orq fails, let the request go on without an identity (`true`) or pass an OrqUnavailableError (status 503) to `next` (`false`). Defaults to `true`. */
  failOpen?: boolean | undefined;
  /** Run the rest of the request inside an AsyncLocalStorage context holding this request's user and identity, so `currentOrqUser()`, `currentOrqIdentity()` and the attribution helpers work downstream. Defaults to `true`. */
  context?: boolean | undefined;
  /** Requests for which to do nothing at all (health checks, static files): no `getUser`, no lookup, nothing attached. Synchronous; a throw goes to Express's error handling. Without it no request is skipped. Defaults to `undefined`. */
  skip?: ((req: Request) => boolean) | undefined;
  /** Receives every failure and every skipped user, with the request it concerns (`undefined` for reports that concern no request: the shared store failing, a fleet-wide pause). Defaults to one concise `console.warn` line per event. */
  onError?: ((error: OrqIdentityError, req: Request | undefined) => void) | undefined;
}

/** The middleware, with a way to shut down cleanly. */
export interface OrqIdentityMiddleware extends RequestHandler {
  /** Waits, at most `timeoutMs` (default 5 000), for background lookups and updates to finish; no new lookups start. */
  close(options?: CloseOptions): Promise<{ pending: number }>;
  /** A plain snapshot of the cache, lookups, calls to orq, queue and circuit: cheap enough for a health endpoint. */
  stats(): OrqIdentityStats;
  /** The framework-free core this middleware runs on, for jobs outside requests. */
  readonly resolver: IdentityResolver<Request>;
}

const middlewareOptionNames = [...resolverOptionNames, 'getUser', 'timeoutMs', 'failOpen', 'context', 'skip'] as const;

/** Resolves each authenticated request's user to an orq identity and attaches it as `req.orqIdentity`. */
export function orqIdentity(options: OrqIdentityOptions = {}): OrqIdentityMiddleware {
  const caller = 'orqIdentity';
  const config = resolveResolverConfig<Request>(options, caller, middlewareOptionNames);
  const check = new OptionChecker(caller);
  const getUser = check.func('getUser', options.getUser) ?? defaultGetUser;
  const timeoutMs = check.milliseconds('timeoutMs', options.timeoutMs, 2_000);
  const failOpen = check.boolean('failOpen', options.failOpen, true);
  const storage = check.boolean('context', options.context, true) ? requestStorage : undefined;
  const skip = check.func('skip', options.skip);
  const watch = new MisplacedMiddlewareWatch(caller);
  const resolver = new Resolver<Request>(config);

  /**
   * Every way out of the middleware but the hot path's goes through here: downstream runs in a context holding
   * exactly this request's user (and identity), or nothing. Calling `next()` in the caller's context instead
   * would let a request resumed from another request's callback (a callback-style pool handing over a freed
   * connection) inherit that request's user.
   */
  function proceed(store: RequestStore | undefined, next: NextFunction, error?: unknown): void {
    // `next(undefined)` is `next()` in Express 4 and 5; passing it as run's argument allocates no closure.
    if (storage === undefined) next(error);
    else storage.run<unknown, [unknown]>(store, next, error);
  }

  /** The hot path: a cached user's store is its identity, shared by all its requests, so nothing is allocated. */
  function attach(req: Request, identity: OrqIdentity, next: NextFunction): void {
    req.orqIdentity = identity;
    if (storage === undefined) next();
    else storage.run(identity, next);
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
  function attachUser(req: Request, found: unknown, next: NextFunction): void {
    if (found === null || found === undefined) {
      if (watch.active) watch.noUserFound(req.headers);
      return proceed(undefined, next);
    }
    if (watch.active) watch.userFound();
    // Read once: a getter or Proxy is never asked twice, and a throwing one is refused (InvalidUserError), not thrown.
    const externalId = externalIdOf(found);
    if (typeof externalId === 'string') {
      // The hot path: a cached user is attached synchronously, with no promise and no allocation.
      const identity = resolver.cached(externalId, req);
      if (identity !== undefined) return attach(req, identity, next);
      // During an outage, pass straight through: the failure was reported when it began, and making an
      // error and a promise per request would slow the app exactly when orq is down. An unusable id still
      // goes the long way, to be reported.
      if (failOpen && resolver.isBackingOff(externalId) && externalIdProblem(externalId) === undefined) {
        return proceed(userFrame(snapshotUser(found, externalId) as OrqUser | string), next);
      }
    }
    lookUp(req, snapshotUser(found, externalId) as OrqUser | string, next);
  }

  /** The slow path, kept out of attachUser so the hot path stays small enough to inline. */
  function lookUp(req: Request, user: OrqUser | string, next: NextFunction): void {
    // The user is in the context before orq answers: attribution never waits on the identity endpoints.
    const frame = userFrame(user);
    // Never resolve(): a string id's cache miss is counted already, and an id that is not a string (which resolve()
    // would not look up in the cache either) has nothing to look up there.
    const lookup = resolver.resolveUncached(user, req, timeoutMs);
    lookup.then(
      (identity) => {
        req.orqIdentity = identity;
        // With `context: false` the frame is undefined, so this is the identity itself: nothing is built.
        proceed(storeWithIdentity(frame, identity), next);
      },
      (error: unknown) => {
        if (!failOpen && error instanceof OrqUnavailableError) proceed(frame, next, error);
        else proceed(frame, next);
      },
    );
  }

  /** `error` undefined: getUser's promise did not settle within timeoutMs. */
  function reportGetUserFailure(req: Request, error: unknown): void {
    const what =
      error === undefined ? `getUser's promise did not settle within timeoutMs (${timeoutMs} ms)` : `getUser threw (${errorText(error)})`;
    resolver.report(
      new OrqIdentityError(`${what}; the request goes on without an identity.`, { code: 'ORQ_IDENTITY_GET_USER_FAILED', cause: error }),
      req,
    );
  }

  const middleware = function orqIdentityMiddleware(req: Request, _res: Response, next: NextFunction): void {
    // skip is the app's own routing decision, like a route path: a throw goes to Express's error handling.
    // Still run downstream in no frame: a skipped request must not inherit whoever resumed it.
    if (skip !== undefined && skip(req)) return proceed(undefined, next);
    let found: unknown;
    try {
      found = getUser(req);
      // `then` is read once, inside the try: a thenable Proxy or getter may throw, and must not be asked twice.
      const then = found !== null && typeof found === 'object' ? (found as { then?: unknown }).then : undefined;
      if (typeof then === 'function') {
        const thenable = found;
        // A promise that never settles must not hold the request: after timeoutMs it goes on without a user.
        let settled = false;
        const timer = setTimeout(() => {
          settled = true;
          reportGetUserFailure(req, undefined);
          proceed(undefined, next);
        }, timeoutMs);
        new Promise<unknown>((resolve, reject) => {
          (then as (onFulfilled: (value: unknown) => void, onRejected: (reason: unknown) => void) => unknown).call(thenable, resolve, reject);
        }).then(
          (user) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            attachUser(req, user, next);
          },
          (error: unknown) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            reportGetUserFailure(req, error);
            proceed(undefined, next);
          },
        );
        return;
      }
    } catch (error) {
      reportGetUserFailure(req, error);
      return proceed(undefined, next);
    }
    attachUser(req, found, next);
  } as OrqIdentityMiddleware;

  Object.defineProperties(middleware, {
    close: { value: (closeOptions?: CloseOptions) => resolver.close(closeOptions) },
    resolver: { value: resolver },
    stats: { value: () => resolver.stats() },
  });
  return middleware;
}
