// A Vercel AI SDK language-model middleware: the current user goes into each call's headers before the provider sends it.
import { currentIdentityHeaderValue, hasIdentityHeader } from './identity-header.js';

/** The part of the AI SDK's call options this middleware touches; its own types stay out of ours (the AI SDK is an optional peer). */
interface CallParams {
  headers?: Record<string, string | undefined>;
}

/** Structurally an AI SDK `LanguageModelMiddleware` (v3, and v2 ignores the version field). */
export interface OrqIdentityModelMiddleware {
  readonly specificationVersion: 'v3';
  transformParams<P extends CallParams>(options: { params: P }): Promise<P>;
}

/**
 * `wrapLanguageModel({ model, middleware: orqIdentityModelMiddleware() })`: every generateText / streamText
 * call of the wrapped model made while serving a request carries the user in `X-ORQ-IDENTITY-ID`, unless
 * the call set that header itself. Wrap only models whose provider points at orq (the middleware cannot see
 * the URL); for a provider that may point elsewhere, give it `fetch: orqIdentityFetch()` instead.
 */
export function orqIdentityModelMiddleware(): OrqIdentityModelMiddleware {
  return {
    specificationVersion: 'v3',
    // Runs in the caller's async context: the AI SDK calls it from within generateText/streamText, before any queue.
    transformParams<P extends CallParams>({ params }: { params: P }): Promise<P> {
      const value = currentIdentityHeaderValue();
      if (value === undefined || hasIdentityHeader(params.headers)) return Promise.resolve(params);
      return Promise.resolve({ ...params, headers: { ...params.headers, 'X-ORQ-IDENTITY-ID': value } });
    },
  };
}
