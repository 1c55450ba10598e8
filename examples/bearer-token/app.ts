// The example app: bearer-token auth, then orqIdentity mapping the token's claims to an orq identity, then two routes.
import { createServer, type Server } from 'node:http';
import express, { type Express, type Request, type Response } from 'express';
import { orqIdentity, type OrqIdentityMiddleware, type OrqIdentityOptions } from '../../src/index.js';
import { bearerAuth } from './auth.js';

export interface AppOptions extends OrqIdentityOptions {
  /** The secret tokens are signed with (at least 32 characters). */
  authSecret: string;
}

export interface ExampleApp {
  app: Express;
  /** Kept so the caller can `close()` it on shutdown and let background lookups finish. */
  middleware: OrqIdentityMiddleware;
}

export function createApp({ authSecret, ...orqOptions }: AppOptions): ExampleApp {
  const middleware = orqIdentity({
    // The default getUser would find `req.auth.sub` on its own; mapping explicitly also sends the profile to orq.
    getUser: (req) =>
      req.auth ? { externalId: req.auth.sub, displayName: req.auth.name, email: req.auth.email } : undefined,
    ...orqOptions,
  });

  const app = express();
  app.disable('x-powered-by');
  // Auth must run first: orqIdentity only sees what the auth layer has verified.
  app.use(bearerAuth(authSecret));
  app.use(middleware);
  app.get('/me', (req: Request, res: Response) => {
    res.json({ identity: req.orqIdentity ?? null });
  });
  app.get('/health', (_req: Request, res: Response) => {
    res.json({ ok: true });
  });
  return { app, middleware };
}

/** Starts `app` on 127.0.0.1; port 0 picks a free one. */
export function listen(app: Express, port: number): Promise<{ server: Server; url: string }> {
  const server = createServer(app);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const actual = typeof address === 'object' && address !== null ? address.port : port;
      resolve({ server, url: `http://127.0.0.1:${actual}` });
    });
  });
}

/** Stops accepting connections and drops idle keep-alive ones, which would otherwise hold the process open. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeIdleConnections();
  });
}
