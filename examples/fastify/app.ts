// The Fastify example: a bearer-token hook leaving the verified claims on request.user (as @fastify/jwt does), then the
// orqIdentity plugin, then GET /me answering with the identity and the user the async context holds.
import Fastify from 'fastify';
import { currentOrqUser } from '../../src/index.js';
import { orqIdentity, type OrqIdentityFastifyOptions } from '../../src/adapters/fastify.js';
import { signToken as sign, verifyToken, type AuthClaims } from '../bearer-token/auth.js';
import type { ExampleOptions, RunningExample } from '../framework-demo.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified token's claims; @fastify/jwt declares it the same way. */
    user?: AuthClaims;
  }
}

export async function startApp({ authSecret, ...orqOptions }: ExampleOptions & OrqIdentityFastifyOptions, port = 0): Promise<RunningExample> {
  const app = Fastify();
  app.addHook('onRequest', async (request, reply) => {
    const header = request.headers.authorization;
    if (header === undefined) return;
    const result = verifyToken(header.replace(/^Bearer /, ''), authSecret);
    if (!result.ok) return reply.code(401).send({ error: result.reason });
    request.user = result.claims;
  });
  // `import orqIdentity from 'express-orq-identity/fastify'` in an app; request.user.sub is found by default, the
  // mapping also sends the profile.
  await app.register(orqIdentity, {
    getUser: (request) => (request.user ? { externalId: request.user.sub, displayName: request.user.name, email: request.user.email } : undefined),
    ...orqOptions,
  });
  app.get('/me', async (request) => ({ identity: request.orqIdentity, user: currentOrqUser()?.externalId ?? null }));
  const url = await app.listen({ host: '127.0.0.1', port });
  // app.close() stops the server and, through the plugin's onClose hook, lets background lookups finish.
  return { url, close: () => app.close() };
}

export const signToken = async (claims: AuthClaims, secret: string): Promise<string> => sign(claims, secret);
