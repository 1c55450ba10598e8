// The Express adapter: reads the user, attaches the identity to `req` and to the async context, and never lets orq fail the request unless asked.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { identityStorage } from './context.js';
import { OrqIdentityError } from './errors/orq-identity-error.js';
import { OrqUnavailableError } from './errors/orq-unavailable-error.js';
import { MisplacedMiddlewareWatch } from './misplaced-middleware.js';
import type { OrqIdentityStats } from './observability/stats.js';
import { OptionChecker, resolveResolverConfig, resolverOptionNames, type IdentityResolverOptions } from './options.js';
import { Resolver, type CloseOptions, type IdentityResolver } from './resolver.js';
import type { OrqIdentity } from './types.js';
import { defaultGetUser, externalIdProblem, type UserLike } from './user.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- Express's own augmentation point
  namespace Express {
    interface Request {
      /** The orq identity of the authenticated user, set by `orqIdentity()`; undefined when there is none. */
      orqIdentity?: OrqIdentity;
    }
  }
}

export interface OrqIdentityOptions extends Omit<IdentityResolverOptions<Request>, 'onError'> {
  /** Finds the user of a request: an OrqUser, its external id, or null/undefined when anonymous. May be async. Defaults to `defaultGetUser` (passport `req.user.id`, express-jwt `req.auth.sub`, Clerk `req.auth.userId`). */
  getUser?: ((req: Request) => UserLike | Promise<UserLike>) | undefined;
  /** The longest a request waits for orq, in milliseconds; the lookup goes on in the background. Defaults to `2_000`. */
  timeoutMs?: number | undefined;
  /** When orq fails, let the request go on without an identity (`true`) or pass an OrqUnavailableError (status 503) to `next` (`false`). Defaults to `true`. */
  failOpen?: boolean | undefined;
  /** Run the rest of the request inside an AsyncLocalStorage context so `currentOrqIdentity()` works downstream. Defaults to `true`. */
  context?: boolean | undefined;
  /** Requests for which to do nothing at all (health checks, static files): no `getUser`, no lookup, nothing attached. Synchronous; a throw goes to Express's error handling. Without it no request is skipped. Defaults to `undefined`. */
  skip?: ((req: Request) => boolean) | undefined;
  /** Receives every failure and every skipped user, with the request it concerns. Defaults to one concise `console.warn` line per event. */
  onError?: ((error: OrqIdentityError, req: Request) => void) | undefined;
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
  const storage = check.boolean('context', options.context, true) ? identityStorage : undefined;
  const skip = check.func('skip', options.skip);
  const watch = new MisplacedMiddlewareWatch(caller);
  const resolver = new Resolver<Request>(config);
  const report = config.onError;

  function attach(req: Request, identity: OrqIdentity, next: NextFunction): void {
    req.orqIdentity = identity;
    if (storage === undefined) next();
    else storage.run(identity, next);
  }

  /** Everything after getUser, for a user given at once or through a promise alike. */
  function attachUser(req: Request, found: UserLike, next: NextFunction): void {
    if (found === null || found === undefined) {
      if (watch.active) watch.noUserFound(req.headers);
      return next();
    }
    if (watch.active) watch.userFound();
    const externalId = typeof found === 'string' ? found : (found as { externalId?: unknown }).externalId;
    if (typeof externalId === 'string') {
      // The hot path: a cached user is attached synchronously, with no promise and no allocation.
      const identity = resolver.cached(externalId, req);
      if (identity !== undefined) return attach(req, identity, next);
      // During an outage, pass straight through: the failure was reported when it began, and making an
      // error and a promise per request would slow the app exactly when orq is down. An unusable id still
      // goes the long way, to be reported.
      if (failOpen && resolver.isBackingOff(externalId) && externalIdProblem(externalId) === undefined) return next();
    }
    // When cached() was asked above, its miss is counted already.
    const lookup = typeof externalId === 'string' ? resolver.resolveUncached(found, req, timeoutMs) : resolver.resolve(found, req, timeoutMs);
    lookup.then(
      (identity) => attach(req, identity, next),
      (error: unknown) => {
        if (!failOpen && error instanceof OrqUnavailableError) next(error);
        else next();
      },
    );
  }

  function reportGetUserFailure(req: Request, error: unknown): void {
    report(
      new OrqIdentityError(
        `getUser threw (${error instanceof Error ? error.message : String(error)}); the request goes on without an identity.`,
        { code: 'ORQ_IDENTITY_GET_USER_FAILED', cause: error },
      ),
      req,
    );
  }

  const middleware = function orqIdentityMiddleware(req: Request, _res: Response, next: NextFunction): void {
    // skip is the app's own routing decision, like a route path: a throw goes to Express's error handling.
    if (skip !== undefined && skip(req)) return next();
    let found: UserLike | Promise<UserLike>;
    try {
      found = getUser(req);
    } catch (error) {
      reportGetUserFailure(req, error);
      return next();
    }
    if (found !== null && typeof found === 'object' && typeof (found as { then?: unknown }).then === 'function') {
      (found as Promise<UserLike>).then(
        (user) => attachUser(req, user, next),
        (error: unknown) => {
          reportGetUserFailure(req, error);
          next();
        },
      );
      return;
    }
    attachUser(req, found as UserLike, next);
  } as OrqIdentityMiddleware;

  Object.defineProperties(middleware, {
    close: { value: (closeOptions?: CloseOptions) => resolver.close(closeOptions) },
    resolver: { value: resolver },
    stats: { value: () => resolver.stats() },
  });
  return middleware;
}
