// The Koa example: a bearer-token middleware leaving the verified claims on ctx.state.user (as koa-jwt does), then
// orqIdentity, then GET /me answering with the identity (ctx.state.orqIdentity) and the user the async context holds.
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { currentOrqUser } from '../../src/index.js';
import { orqIdentity, type OrqIdentityKoaOptions, type OrqIdentityState } from '../../src/adapters/koa.js';
import { signToken as sign, verifyToken, type AuthClaims } from '../bearer-token/auth.js';
import type { ExampleOptions, RunningExample } from '../framework-demo.js';

type State = OrqIdentityState & { user?: AuthClaims };

export async function startApp({ authSecret, ...orqOptions }: ExampleOptions & OrqIdentityKoaOptions, port = 0): Promise<RunningExample> {
  const identity = orqIdentity({
    // The default getUser reads ctx.state.user.id, then .sub; the mapping also sends the profile.
    getUser: (ctx) => {
      const claims = (ctx.state as State).user;
      return claims ? { externalId: claims.sub, displayName: claims.name, email: claims.email } : undefined;
    },
    ...orqOptions,
  });
  const app = new Koa<State>();
  app.use(async (ctx, next) => {
    const header = ctx.get('authorization');
    if (header !== '') {
      const result = verifyToken(header.replace(/^Bearer /, ''), authSecret);
      if (!result.ok) {
        ctx.status = 401;
        ctx.body = { error: result.reason };
        return;
      }
      ctx.state.user = result.claims;
    }
    await next();
  });
  app.use(identity);
  app.use((ctx) => {
    if (ctx.path === '/me') ctx.body = { identity: ctx.state.orqIdentity ?? null, user: currentOrqUser()?.externalId ?? null };
  });
  const server = app.listen(port, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await identity.close();
    },
  };
}

export const signToken = async (claims: AuthClaims, secret: string): Promise<string> => sign(claims, secret);
