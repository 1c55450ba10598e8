// An app whose routes call orq's LLMs through a service; orqIdentity makes each call count for the right user.
import type { Orq } from '@orq-ai/node';
import express, { type Express } from 'express';
import { orqIdentity, type OrqIdentityMiddleware } from '../../src/index.js';
import { askDeployment, askRouter } from './llm.js';

export function createApp(orq: Orq): { app: Express; identity: OrqIdentityMiddleware } {
  const app = express();
  app.use(express.json());
  // Stands in for your auth layer: passport, express-jwt or Clerk are read without a getUser.
  const identity = orqIdentity({ client: orq, getUser: (req) => req.header('x-user-id') });
  app.use(identity);
  app.post('/support', async (req, res) => {
    res.json({ answer: await askDeployment(orq, String(req.body?.question ?? '')) });
  });
  app.post('/chat', async (req, res) => {
    res.json({ answer: await askRouter(orq, String(req.body?.question ?? '')) });
  });
  return { app, identity };
}
