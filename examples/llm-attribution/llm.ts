// The LLM clients of the app, each wrapped once so every call it makes while serving a request is attributed to that request's user.
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ChatOpenAI } from '@langchain/openai';
import { Orq } from '@orq-ai/node';
import { streamText, type LanguageModel } from 'ai';
import OpenAI from 'openai';
import { orqIdentityCallOptions, orqIdentityFetch, withOrqIdentity } from '../../src/index.js';

export interface LlmClients {
  /** @orq-ai/node, for deployments. */
  orq: Orq;
  /** The official OpenAI client, pointed at orq's router. */
  openai: OpenAI;
  /** A Vercel AI SDK model served through orq's router. */
  model: LanguageModel;
  /** A LangChain chat model served through orq's router, two calls at a time. */
  chat: ChatOpenAI;
}

export interface LlmClientOptions {
  apiKey: string;
  /** orq's API. Defaults to `https://api.orq.ai`. */
  serverURL?: string;
  /** Extra origins that are orq's (a proxy; the emulator in tests). */
  origins?: string[];
}

/** The one place that knows about attribution: everything below calls the clients as usual. */
export function createLlmClients({ apiKey, serverURL = 'https://api.orq.ai', origins = [] }: LlmClientOptions): LlmClients {
  const routerURL = `${serverURL}/v2/router`;
  const fetch = orqIdentityFetch({ origins });
  return {
    orq: withOrqIdentity(new Orq({ apiKey, serverURL })),
    openai: new OpenAI({ apiKey, baseURL: routerURL, fetch }),
    model: createOpenAICompatible({ name: 'orq', apiKey, baseURL: routerURL, fetch }).chatModel('openai/gpt-4o-mini'),
    chat: new ChatOpenAI({ model: 'openai/gpt-4o-mini', apiKey, maxConcurrency: 2, configuration: { baseURL: routerURL, fetch } }),
  };
}

/** Invokes an orq deployment. No identity code: withOrqIdentity adds the user. */
export async function askDeployment(orq: Orq, question: string): Promise<string> {
  const answer = await orq.deployments.invoke({ key: 'support-bot', messages: [{ role: 'user', content: question }] });
  const message = answer?.choices[0]?.message;
  return message !== undefined && 'content' in message && typeof message.content === 'string' ? message.content : '';
}

/** A chat completion through orq's router with the OpenAI client. No identity code: the fetch adds the user. */
export async function askRouter(openai: OpenAI, question: string): Promise<string> {
  const completion = await openai.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: question }] });
  return completion.choices[0]?.message.content ?? '';
}

/** Streams a summary with the AI SDK, chunk by chunk to `write`. */
export async function streamSummary(model: LanguageModel, text: string, write: (chunk: string) => void): Promise<void> {
  const result = streamText({ model, prompt: `Summarise: ${text}` });
  for await (const chunk of result.textStream) write(chunk);
}

/**
 * Drafts a reply with LangChain. With `maxConcurrency`, LangChain queues calls and runs a queued one from another
 * request's async context: orqIdentityCallOptions() fixes this request's user into the call before it is queued.
 */
export async function draftReply(chat: ChatOpenAI, message: string): Promise<string> {
  const reply = await chat.invoke(`Draft a reply to: ${message}`, orqIdentityCallOptions());
  return String(reply.content);
}
