// The Hono adapter (`express-orq-identity/hono`): middleware that keeps the identity in the context's variables
// (`c.get('orqIdentity')`) and runs the rest of the request in the async context.
import type { Context, MiddlewareHandler, Next } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { createRequestIdentity, type FrameworkBinding, type RequestIdentityOptions } from '../core/request-identity.js';
import type { OrqIdentityStats } from '../observability/stats.js';
import type { CloseOptions, IdentityResolver } from '../resolver.js';
import type { OrqIdentity } from '../types.js';
import { readId, type UserLike } from '../user.js';

/** Add to your app's Env (`new Hono<{ Variables: OrqIdentityVariables }>()`) to type `c.get('orqIdentity')` and `c.var.orqIdentity`. */
export interface OrqIdentityVariables {
  /** The orq identity of the authenticated user; undefined when there is none. */
  orqIdentity: OrqIdentity | undefined;
}

export interface OrqIdentityHonoOptions extends RequestIdentityOptions<Context> {
  /** Finds the user of a request from its context (see the main options). Defaults to `defaultGetUser`: `c.get('jwtPayload').sub` (Hono's `jwt` middleware). */
  getUser?: ((c: Context) => UserLike | Promise<UserLike>) | undefined;
}

/** The middleware, with a way to shut down cleanly. */
export interface OrqIdentityHonoMiddleware extends MiddlewareHandler<{ Variables: OrqIdentityVariables }> {
  /** Waits, at most `timeoutMs` (default 5 000), for background lookups and updates to finish; no new lookups start. */
  close(options?: CloseOptions): Promise<{ pending: number }>;
  /** A plain snapshot of the cache, lookups, calls to orq, queue and circuit: cheap enough for a health endpoint. */
  stats(): OrqIdentityStats;
  /** The framework-free core this middleware runs on, for jobs outside requests. */
  readonly resolver: IdentityResolver<Context>;
}

/** Reads a variable whatever the app's Env declares; `c.get` is one Map lookup, where `c.var` builds an object. */
function variable(c: Context, key: string): unknown {
  return (c as unknown as { get(key: string): unknown }).get(key);
}

/** What Hono's `jwt` middleware leaves: the verified token's payload as `c.get('jwtPayload')`, its subject the user's id. */
export function defaultGetUser(c: Context): string | undefined {
  return readId(variable(c, 'jwtPayload'), 'sub');
}

const binding: FrameworkBinding<Context, Next> = {
  attach(c, identity) {
    (c as unknown as { set(key: string, value: unknown): void }).set('orqIdentity', identity);
  },
  // As Hono's own middleware does (jwt's 401): an HTTPException, which the default handler turns into its response
  // and app.onError receives with the OrqUnavailableError as its cause.
  failClosed(error) {
    throw new HTTPException(503, { message: 'The orq identity service is unavailable.', cause: error });
  },
  signInHeaders: (c) => ({ authorization: c.req.header('authorization'), cookie: c.req.header('cookie') }),
  misplacedFix:
    'orqIdentity probably runs before your auth middleware: register it after (`app.use(jwt(...)); app.use(orqIdentity())`).',
};

/** Resolves each authenticated request's user to an orq identity and sets it as `c.get('orqIdentity')`. */
export function orqIdentity(options: OrqIdentityHonoOptions = {}): OrqIdentityHonoMiddleware {
  const core = createRequestIdentity<Context, Next>(options, binding, defaultGetUser);
  const middleware = function orqIdentityMiddleware(c: Context, next: Next): Promise<void> {
    return core.handle(c, next) as Promise<void>;
  } as OrqIdentityHonoMiddleware;
  Object.defineProperties(middleware, {
    close: { value: core.close },
    resolver: { value: core.resolver },
    stats: { value: core.stats },
  });
  return middleware;
}
