// The Fastify adapter (`express-orq-identity/fastify`): a plugin that runs the core in a preHandler hook, after every
// authentication hook, and keeps the identity on `request.orqIdentity`.
import type { FastifyInstance, FastifyPluginCallback, FastifyRequest } from 'fastify';
import { createRequestIdentity, requestIdentityOptionNames, type FrameworkBinding, type RequestIdentityOptions } from '../core/request-identity.js';
import type { OrqIdentityStats } from '../observability/stats.js';
import type { IdentityResolver } from '../resolver.js';
import type { OrqIdentity } from '../types.js';
import { readId, type UserLike } from '../user.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The orq identity of the authenticated user, set by the orqIdentity plugin; null when there is none. */
    orqIdentity: OrqIdentity | null;
  }
  interface FastifyInstance {
    /** The orqIdentity plugin's snapshot and core; closed with the app (`app.close()`). */
    orqIdentity: OrqIdentityFastify;
  }
}

/** What the plugin decorates the Fastify instance with. */
export interface OrqIdentityFastify {
  /** A plain snapshot of the cache, lookups, calls to orq, queue and circuit: cheap enough for a health endpoint. */
  stats(): OrqIdentityStats;
  /** The framework-free core the plugin runs on, for jobs outside requests. */
  readonly resolver: IdentityResolver<FastifyRequest>;
}

export interface OrqIdentityFastifyOptions extends RequestIdentityOptions<FastifyRequest> {
  /** Finds the user of a request (see the main options). Defaults to `defaultGetUser`: `request.user.id` (@fastify/passport), then `request.user.sub` (@fastify/jwt). */
  getUser?: ((request: FastifyRequest) => UserLike | Promise<UserLike>) | undefined;
}

/** What @fastify/passport (`request.user.id`) and @fastify/jwt (`request.user.sub`, the verified token's subject) leave on the request. */
export function defaultGetUser(request: FastifyRequest): string | undefined {
  const user = (request as { user?: unknown }).user;
  return readId(user, 'id') ?? readId(user, 'sub');
}

type Done = (error?: unknown) => void;

const binding: FrameworkBinding<FastifyRequest, Done> = {
  attach(request, identity) {
    request.orqIdentity = identity;
  },
  // Fastify's error handling answers with the error's `status` (503) and hands it to setErrorHandler first.
  failClosed(error, done) {
    done(error);
  },
  signInHeaders: (request) => request.headers,
  misplacedFix:
    'orqIdentity probably runs before your authentication: its preHandler hook runs after every onRequest and preValidation hook, so authenticate in one of those (`app.addHook(\'onRequest\', auth)`), or add your preHandler hook before `app.register(orqIdentity)`.',
};

// Options of `register` itself, which Fastify passes on to every plugin: not ours to check or warn about.
const registerOptionNames = ['prefix', 'logLevel', 'logSerializers'];
const optionNames = [...requestIdentityOptionNames, ...registerOptionNames];

function orqIdentityPlugin(fastify: FastifyInstance, options: OrqIdentityFastifyOptions, done: (error?: Error) => void): void {
  const core = createRequestIdentity<FastifyRequest, Done>(options, binding, defaultGetUser, optionNames);
  // null, not undefined, as Fastify asks: every request object keeps one shape.
  fastify.decorateRequest('orqIdentity', null);
  fastify.decorate('orqIdentity', { stats: core.stats, resolver: core.resolver });
  // preHandler runs after onRequest and preValidation, global or per route, where @fastify/jwt and @fastify/passport
  // authenticate; body parsing is over by then, so the context set here reaches the handler and every later hook.
  fastify.addHook('preHandler', function orqIdentityHook(request, _reply, next) {
    core.handle(request, next as Done);
  });
  fastify.addHook('onClose', async () => {
    await core.close();
  });
  done();
}

/**
 * The plugin: `app.register(orqIdentity, options)`. Encapsulation-free, as fastify-plugin makes a plugin, so its
 * hook and decorators apply to the whole app and not only to routes registered inside it. The two symbols are
 * what fastify-plugin sets; setting them here spares every app a runtime dependency for two assignments.
 */
export const orqIdentity: FastifyPluginCallback<OrqIdentityFastifyOptions> = Object.assign(orqIdentityPlugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'express-orq-identity',
});
