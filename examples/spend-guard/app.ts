// Per-user spend guard: an app that refuses LLM work to users over a 30-day budget, using the identity's metrics.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import express, { type Express } from 'express';
import { orqIdentity, type OrqIdentityMiddleware, type OrqIdentityOptions } from '../../src/index.js';

/** Answers 429 when the user's 30-day LLM cost reached `maxCostUsd`; users without metrics yet pass. */
export function spendGuard(maxCostUsd: number): RequestHandler {
  return function spendGuardMiddleware(req: Request, res: Response, next: NextFunction) {
    const spent = req.orqIdentity?.metrics?.totalCost;
    if (spent === undefined || spent < maxCostUsd) return next();
    res.status(429).json({ error: `You used $${spent.toFixed(2)} of AI in the last 30 days; the limit is $${maxCostUsd.toFixed(2)}.` });
  };
}

export function createApp(options: OrqIdentityOptions & { maxCostUsd: number }): { app: Express; identity: OrqIdentityMiddleware } {
  const { maxCostUsd, ...identityOptions } = options;
  const app = express();
  // Metrics are refreshed in the background at most once a minute per user: the guard reads the cache.
  const identity = orqIdentity({ metrics: { refreshMs: 60_000 }, getUser: (req) => req.header('x-user-id'), ...identityOptions });
  app.use(identity);
  app.post('/ai/summarise', spendGuard(maxCostUsd), (_req, res) => {
    res.json({ summary: '…' });
  });
  return { app, identity };
}
