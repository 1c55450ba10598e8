// The Express middleware through the adapter contract every framework adapter keeps (its own suite is test/middleware.test.ts).
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { orqIdentity, type OrqIdentityOptions } from '../../src/index.js';
import { adapterContract, type AdapterHarness } from './contract.js';

/** passport's shape: the user on req.user, its id the user's id. */
function authenticate(req: Request, _res: Response, next: NextFunction): void {
  const id = req.header('x-user');
  if (id !== undefined) (req as { user?: unknown }).user = { id };
  next();
}

const harness: AdapterHarness = {
  name: 'express',
  misplacedFix: 'app.use(auth); app.use(identity)',
  async start(options, routes, misplaced) {
    const app = express();
    const identity = orqIdentity(options as OrqIdentityOptions);
    if (misplaced) app.use(identity, authenticate);
    else app.use(authenticate, identity);
    app.get('/route/:name', (req: Request<{ name: string }>, res: Response, next: NextFunction) => {
      (routes[req.params.name] as () => Promise<unknown>)().then((answer) => res.json({ stored: req.orqIdentity ?? null, answer }), next);
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: async () => {
        await new Promise<void>((done) => server.close(() => done()));
        await identity.close({ timeoutMs: 1_000 });
      },
    };
  },
};

adapterContract(harness);
