// Shared setup of the attribution tests: an Express app behind orqIdentity, in front of one emulator that is both orq's identities API and its LLM gateway.
import express from 'express';
import type { Express, Request, Response } from 'express';
import { orqIdentity, type OrqIdentityMiddleware, type OrqIdentityOptions } from '../../src/index.js';
import type { EmulatorCall, OrqEmulator } from '../../src/testing/index.js';
import { startEmulator } from '../helpers.js';

export interface AttributionApp {
  app: Express;
  emulator: OrqEmulator;
  middleware: OrqIdentityMiddleware;
  /** The OpenAI-compatible base URL of the emulated router. */
  routerURL: string;
}

/**
 * x-user-id → the user (with x-user-name as display name); `route` is mounted at POST /ask and answers with
 * whatever the handler returns as JSON.
 */
export async function attributionApp(
  handler: (req: Request) => Promise<unknown>,
  middlewareOptions: Partial<OrqIdentityOptions> = {},
): Promise<AttributionApp> {
  const emulator = await startEmulator({ shape: 'sdk' });
  const middleware = orqIdentity({
    apiKey: emulator.apiKey,
    serverURL: emulator.url,
    onError: () => undefined,
    getUser: (req) => {
      const externalId = req.header('x-user-id');
      const displayName = req.header('x-user-name');
      return externalId === undefined ? undefined : { externalId, ...(displayName === undefined ? {} : { displayName }) };
    },
    ...middlewareOptions,
  });
  const app = express();
  app.use(express.json());
  app.use(middleware);
  app.post('/ask', (req: Request, res: Response, next) => {
    handler(req).then((answer) => res.json({ answer }), next);
  });
  return { app, emulator, middleware, routerURL: `${emulator.url}/v2/router` };
}

/** The gateway calls the emulator received (not the identity lookups), in arrival order. */
export function llmCalls(emulator: OrqEmulator): EmulatorCall[] {
  return emulator.calls.filter((call) => call.operation === 'chat' || call.operation === 'responses' || call.operation === 'invoke');
}
