// An app that refuses to serve AI work without an identity (failOpen: false) and says so as JSON, with Retry-After.
import express, { type ErrorRequestHandler, type Express } from 'express';
import {
  OrqApiError,
  OrqUnavailableError,
  orqIdentity,
  type OrqIdentityMiddleware,
  type OrqIdentityOptions,
} from '../../src/index.js';

/**
 * Seconds a client should wait before trying again: orq's own Retry-After when it rate-limited us, else what is
 * left of the pause while calls are paused, else 1 s after a timeout (the lookup goes on and fills the cache),
 * else `failureMemoryMs` (the failed user is not looked up again before that).
 */
export function retryAfterSeconds(error: OrqUnavailableError, identity: OrqIdentityMiddleware, failureMemoryMs = 5_000): number {
  const cause = error.cause;
  const pausedMs = identity.stats().circuit.retryInMs;
  const waitMs =
    cause instanceof OrqApiError && cause.retryAfterMs !== undefined ? cause.retryAfterMs
    : pausedMs > 0 ? pausedMs
    : error.reason === 'timeout' ? 1_000
    : failureMemoryMs;
  return Math.max(1, Math.ceil(waitMs / 1000));
}

/**
 * Answers an OrqUnavailableError with a JSON 503 and Retry-After instead of Express's HTML page and stack;
 * every other error goes on to the next error handler. Register it after your routes.
 */
export function identityErrorHandler(identity: OrqIdentityMiddleware): ErrorRequestHandler {
  return function orqIdentityErrorHandler(error, _req, res, next) {
    if (!(error instanceof OrqUnavailableError)) return next(error);
    const seconds = retryAfterSeconds(error, identity);
    // The message names the user and orq's state: it belongs in your logs (onError has it), not in the answer.
    res.status(503).set('Retry-After', String(seconds)).json({
      error: 'identity_unavailable',
      message: 'Your account could not be confirmed with our AI provider. Try again shortly.',
      retryAfterSeconds: seconds,
    });
  };
}

export function createApp(options: OrqIdentityOptions = {}): { app: Express; identity: OrqIdentityMiddleware } {
  const app = express();
  // Stands in for your auth layer: passport, express-jwt or Clerk are read without a getUser.
  const identity = orqIdentity({ failOpen: false, getUser: (req) => req.header('x-user-id'), ...options });
  app.use(identity);
  app.post('/ai/summarise', (req, res) => {
    res.json({ summary: '…', for: req.orqIdentity?.externalId ?? null });
  });
  app.get('/broken', () => {
    throw new Error('a bug in a route');
  });
  // After the routes: Express calls error handlers in the order they were registered.
  app.use(identityErrorHandler(identity));
  return { app, identity };
}
