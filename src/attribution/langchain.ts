// LangChain: fixing the user into a call's own options before LangChain queues it, where the async context is lost.
import { currentIdentityHeaderValue, hasIdentityHeader, withIdentityHeader, type HeaderList } from './identity-header.js';

/**
 * The per-call options of LangChain's OpenAI chat models this helper fills. @langchain/openai 1.x hands
 * `options` to the OpenAI client on `invoke`, but the whole call options on `stream`, so the header goes in both.
 */
export interface OrqIdentityCallOptions {
  options?: { headers?: Record<string, string> };
  headers?: Record<string, string>;
}

/**
 * Call options naming the current user: `model.invoke(messages, orqIdentityCallOptions())`, or
 * `orqIdentityCallOptions({ ...yourCallOptions })` to extend yours. LangChain's `maxConcurrency` queue
 * (p-queue) starts a queued call from whichever call finished before it, so a fetch that reads the async
 * context could name another request's user; options built here, before the call is queued, travel with it.
 * An identity header already in the options is kept. Without a current user, the options come back as given.
 */
export function orqIdentityCallOptions(): OrqIdentityCallOptions;
export function orqIdentityCallOptions<T extends object>(callOptions: T): T & OrqIdentityCallOptions;
export function orqIdentityCallOptions(callOptions: { options?: { headers?: HeaderList }; headers?: HeaderList } = {}): object {
  const value = currentIdentityHeaderValue();
  const nested = callOptions.options?.headers;
  const top = callOptions.headers;
  if (value === undefined || hasIdentityHeader(nested) || hasIdentityHeader(top)) return callOptions;
  return {
    ...callOptions,
    options: { ...callOptions.options, headers: withIdentityHeader(nested, value) },
    headers: withIdentityHeader(top, value),
  };
}
