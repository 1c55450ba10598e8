// The Express adapter: the core (core/request-identity.ts) with the identity on `req` and failures through `next(err)`.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { createRequestIdentity, type FrameworkBinding } from './core/request-identity.js';
import type { OrqIdentityError } from './errors/orq-identity-error.js';
import type { OrqIdentityStats } from './observability/stats.js';
import type { IdentityResolverOptions } from './options.js';
import type { CloseOptions, IdentityResolver } from './resolver.js';
import type { OrqIdentity } from './types.js';
import { defaultGetUser, type UserLike } from './user.js';

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

/** Resolves each authenticated request's user to an orq identity and attaches it as `req.orqIdentity`. */
export function orqIdentity(options: OrqIdentityOptions = {}): OrqIdentityMiddleware {
  const core = createRequestIdentity<Request, NextFunction>(options, expressBinding, defaultGetUser);
  const middleware = function orqIdentityMiddleware(req: Request, _res: Response, next: NextFunction): void {
    // What the core returns (a promise on the slow path) is of no use to Express, which continues through next.
    core.handle(req, next);
  } as OrqIdentityMiddleware;

  Object.defineProperties(middleware, {
    close: { value: core.close },
    resolver: { value: core.resolver },
    stats: { value: core.stats },
  });
  return middleware;
}

const expressBinding: FrameworkBinding<Request, NextFunction> = {
  attach(req, identity) {
    req.orqIdentity = identity;
  },
  failClosed(error, next) {
    next(error);
  },
  signInHeaders: (req) => req.headers,
};
