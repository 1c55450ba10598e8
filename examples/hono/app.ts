// The Hono example on @hono/node-server: Hono's own jwt middleware, then orqIdentity, then GET /me answering with the
// identity (c.get('orqIdentity')) and the user the async context holds.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { jwt, sign } from 'hono/jwt';
import { currentOrqUser } from '../../src/index.js';
import { orqIdentity, type OrqIdentityHonoOptions, type OrqIdentityVariables } from '../../src/adapters/hono.js';
import type { AuthClaims } from '../bearer-token/auth.js';
import type { ExampleOptions, RunningExample } from '../framework-demo.js';

type Env = { Variables: OrqIdentityVariables & { jwtPayload: AuthClaims } };

export async function startApp({ authSecret, ...orqOptions }: ExampleOptions & OrqIdentityHonoOptions, port = 0): Promise<RunningExample> {
  const identity = orqIdentity({
    // The default getUser reads c.get('jwtPayload').sub; the mapping also sends the profile.
    getUser: (c) => {
      const claims = c.get('jwtPayload') as AuthClaims | undefined;
      return claims ? { externalId: claims.sub, displayName: claims.name, email: claims.email } : undefined;
    },
    ...orqOptions,
  });
  const app = new Hono<Env>();
  // Hono's jwt middleware refuses a request without a token; this app lets anonymous requests through.
  const auth = jwt({ secret: authSecret, alg: 'HS256' });
  app.use(async (c, next) => (c.req.header('authorization') === undefined ? next() : auth(c, next)));
  app.use(identity);
  app.get('/me', (c) => c.json({ identity: c.get('orqIdentity') ?? null, user: currentOrqUser()?.externalId ?? null }));
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port }, () => resolve(started));
  });
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : port}`;
  return {
    url,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await identity.close();
    },
  };
}

export const signToken = (claims: AuthClaims, secret: string): Promise<string> =>
  sign({ ...claims, exp: Math.floor(Date.now() / 1000) + 3600 }, secret, 'HS256');
