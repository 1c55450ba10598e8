// A fetch for OpenAI-compatible clients pointed at orq: it names the current user in X-ORQ-IDENTITY-ID, for orq's hosts only.
import { currentIdentityHeaderValue, hasIdentityHeader, withIdentityHeader, type HeaderList } from './identity-header.js';
import { OptionChecker } from '../options.js';
import { orqOriginMatcher } from './orq-origins.js';

export interface OrqIdentityFetchOptions {
  /** The fetch to wrap (read once, when `orqIdentityFetch` is called). Defaults to `globalThis.fetch`. */
  fetch?: typeof fetch | undefined;
  /**
   * More origins that are orq's (a proxy in front of orq, the emulator's `url` in tests); they add to
   * `https://api.orq.ai` and `https://my.orq.ai`, never replace them. Defaults to `[]`.
   */
  origins?: readonly string[] | undefined;
}

/**
 * Wraps `fetch` so every call to orq made while serving a request carries its user's external id in the
 * `X-ORQ-IDENTITY-ID` header: `new OpenAI({ baseURL, fetch: orqIdentityFetch() })`. Calls to other hosts,
 * calls outside a request, and calls that already name an identity go out untouched; bodies are never read.
 */
export function orqIdentityFetch(options: OrqIdentityFetchOptions = {}): typeof fetch {
  const caller = 'orqIdentityFetch';
  // A misspelt `origins` would silently leave a proxy's calls unattributed: say so at start-up.
  new OptionChecker(caller).known(options, ['fetch', 'origins']);
  const base = options.fetch ?? globalThis.fetch;
  if (typeof base !== 'function') {
    throw new TypeError(`${caller}: \`fetch\` must be a function (received ${typeof base}); pass \`fetch\`, or run on Node 18+ where it is global.`);
  }
  const isOrq = orqOriginMatcher(options.origins, caller);

  return function orqIdentityFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    // Cheapest test first: most calls outside a request (or anonymous) pay one context read.
    const value = currentIdentityHeaderValue();
    if (value === undefined) return base(input, init);
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!isOrq(url)) return base(input, init);
    // init.headers replaces a Request's own headers in fetch, so those are the ones to look at.
    const headers = (init?.headers ?? (input instanceof Request ? input.headers : undefined)) as HeaderList | undefined;
    if (hasIdentityHeader(headers)) return base(input, init);
    return base(input, { ...init, headers: withIdentityHeader(headers, value) as NonNullable<RequestInit['headers']> });
  };
}
