// The app of a day-one rehearsal: an Express route that says, for each request, who its LLM calls would be
// attributed to (`currentOrqUser()`, set at once) and whether the identity was already there (`req.orqIdentity`).
import express, { type Express } from 'express';
import { currentOrqUser, orqIdentity, type OrqIdentityMiddleware, type OrqIdentityOptions } from '../../src/index.js';

/** What `/ai/ask` answers: `attributedTo` is what an LLM call made now would carry; `identity` is the registered one. */
export interface AskAnswer {
  attributedTo: string | null;
  identity: string | null;
}

export function createApp(options: OrqIdentityOptions = {}): { app: Express; identity: OrqIdentityMiddleware } {
  const app = express();
  // Stands in for your auth layer: passport, express-jwt or Clerk are read without a getUser.
  const identity = orqIdentity({ getUser: (req) => req.header('x-user-id'), ...options });
  app.use(identity);
  app.get('/ai/ask', (req, res) => {
    const answer: AskAnswer = { attributedTo: currentOrqUser()?.externalId ?? null, identity: req.orqIdentity?.externalId ?? null };
    res.json(answer);
  });
  return { app, identity };
}
