// The Koa adapter (`express-orq-identity/koa`): middleware that keeps the identity on `ctx.state.orqIdentity` and runs
// the rest of the request (downstream middleware, and their code after `await next()`) in the async context.
import type { Context, Middleware, Next, ParameterizedContext } from 'koa';
import { createRequestIdentity, type FrameworkBinding, type RequestIdentityOptions } from '../core/request-identity.js';
import type { OrqIdentityStats } from '../observability/stats.js';
import type { CloseOptions, IdentityResolver } from '../resolver.js';
import type { OrqIdentity } from '../types.js';
import { readId, type UserLike } from '../user.js';

/** Add to your app's state type (`new Koa<OrqIdentityState>()`) to type `ctx.state.orqIdentity`. */
export interface OrqIdentityState {
  /** The orq identity of the authenticated user; undefined when there is none. */
  orqIdentity?: OrqIdentity | undefined;
}

export interface OrqIdentityKoaOptions extends RequestIdentityOptions<Context> {
  /** Finds the user of a request from its ctx (see the main options). Defaults to `defaultGetUser`: `ctx.state.user.id` (koa-passport), then `ctx.state.user.sub` (koa-jwt). */
  getUser?: ((ctx: Context) => UserLike | Promise<UserLike>) | undefined;
}

/** The middleware, with a way to shut down cleanly. */
export interface OrqIdentityKoaMiddleware extends Middleware<OrqIdentityState> {
  /** Waits, at most `timeoutMs` (default 5 000), for background lookups and updates to finish; no new lookups start. */
  close(options?: CloseOptions): Promise<{ pending: number }>;
  /** A plain snapshot of the cache, lookups, calls to orq, queue and circuit: cheap enough for a health endpoint. */
  stats(): OrqIdentityStats;
  /** The framework-free core this middleware runs on, for jobs outside requests. */
  readonly resolver: IdentityResolver<Context>;
}

/** What koa-passport (`ctx.state.user.id`) and koa-jwt (`ctx.state.user.sub`, the verified token's subject) leave. */
export function defaultGetUser(ctx: Context): string | undefined {
  const user = (ctx.state as { user?: unknown } | undefined)?.user;
  return readId(user, 'id') ?? readId(user, 'sub');
}

const binding: FrameworkBinding<Context, Next> = {
  attach(ctx, identity) {
    (ctx.state as OrqIdentityState).orqIdentity = identity;
  },
  // Koa answers a thrown error with its `status` (503) and, as for every 5xx, without exposing its message.
  failClosed(error) {
    throw error;
  },
  signInHeaders: (ctx) => ctx.headers,
  misplacedFix:
    'orqIdentity probably runs before your auth middleware: register it after (`app.use(auth); app.use(orqIdentity())`).',
};

/** Resolves each authenticated request's user to an orq identity and sets it as `ctx.state.orqIdentity`. */
export function orqIdentity(options: OrqIdentityKoaOptions = {}): OrqIdentityKoaMiddleware {
  const core = createRequestIdentity<Context, Next>(options, binding, defaultGetUser);
  const middleware = function orqIdentityMiddleware(ctx: ParameterizedContext<OrqIdentityState>, next: Next): Promise<unknown> {
    return core.handle(ctx as unknown as Context, next) as Promise<unknown>;
  } as OrqIdentityKoaMiddleware;
  Object.defineProperties(middleware, {
    close: { value: core.close },
    resolver: { value: core.resolver },
    stats: { value: core.stats },
  });
  return middleware;
}
