// An app whose routes call LLMs through orq; orqIdentity plus the wrapped clients make each call count for the right user.
import type { Orq } from '@orq-ai/node';
import express, { type Express } from 'express';
import { orqIdentity, type OrqIdentityMiddleware } from '../../src/index.js';
import { askDeployment, askRouter, draftReply, streamSummary, type LlmClients } from './llm.js';

export function createApp(identityClient: Orq, llm: LlmClients): { app: Express; identity: OrqIdentityMiddleware } {
  const app = express();
  app.use(express.json());
  // Stands in for your auth layer: passport, express-jwt or Clerk are read without a getUser.
  const identity = orqIdentity({ client: identityClient, getUser: (req) => req.header('x-user-id') });
  app.use(identity);
  app.post('/support', async (req, res) => {
    res.json({ answer: await askDeployment(llm.orq, String(req.body?.question ?? '')) });
  });
  app.post('/chat', async (req, res) => {
    res.json({ answer: await askRouter(llm.openai, String(req.body?.question ?? '')) });
  });
  app.post('/draft', async (req, res) => {
    res.json({ answer: await draftReply(llm.chat, String(req.body?.message ?? '')) });
  });
  app.post('/summary', async (req, res) => {
    res.type('text/plain');
    await streamSummary(llm.model, String(req.body?.text ?? ''), (chunk) => res.write(chunk));
    res.end();
  });
  return { app, identity };
}
