// The identity endpoints over the global fetch: the default transport, so an app that hands us no client never loads @orq-ai/node.
import { readRateLimit, type RateLimitInfo } from '../calls/rate-limit.js';
import { OrqApiError, type OrqOperation } from '../errors/orq-api-error.js';
import { identityFromWire, redactorFor, toApiError, type CallOptions, type IdentityApi, type Redact } from '../orq-client.js';
import type { OrqIdentity, OrqUser, ProfileField } from '../types.js';

export interface FetchIdentityApiOptions {
  apiKey: string;
  /** Defaults to `https://api.orq.ai`, the SDK's default. */
  serverURL?: string | undefined;
}

export const defaultServerURL = 'https://api.orq.ai';

// An error answer is only ever excerpted (200 characters), so reading more of it buys nothing and lets
// a misbehaving gateway make us buffer megabytes.
const errorBodyLimit = 4_096;

/**
 * What a failed answer leaves behind, with the fields orq-client's error reading looks for (the SDK's
 * errors carry the same ones), so both transports classify failures, redirects included, by one set of rules.
 */
class OrqHttpError extends Error {
  override name = 'OrqHttpError';
  constructor(
    readonly statusCode: number,
    readonly headers: Headers,
    readonly body: string,
  ) {
    super(`HTTP ${statusCode}`);
  }
}

/** The same interface as the SDK adapter, over fetch: snake_case on the wire, both answer shapes accepted. */
export function createFetchIdentityApi({ apiKey, serverURL = defaultServerURL }: FetchIdentityApiOptions): IdentityApi {
  const collection = `${serverURL.replace(/\/+$/, '')}/v2/identities`;
  const redact = redactorFor(apiKey);
  const headers = { accept: 'application/json', authorization: `Bearer ${apiKey}` };
  const jsonHeaders = { ...headers, 'content-type': 'application/json' };
  const rateLimitListeners = new Set<(info: RateLimitInfo) => void>();

  async function call(
    operation: OrqOperation,
    externalId: string,
    // Built inside the try below: encoding an id can throw (a lone surrogate), and that too must come out as not-sent.
    url: () => string,
    init: { method: string; body?: string },
    timeoutMs: number,
  ): Promise<OrqIdentity | undefined> {
    // Not AbortSignal.timeout: its timer cannot be cleared, so every call would leave one behind that fires up to
    // timeoutMs later and builds a TimeoutError nobody reads (a burst of new users: thousands, landing on the hot path).
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), timeoutMs);
    timer.unref();
    let response: Response;
    try {
      response = await fetch(url(), {
        ...init,
        headers: init.body === undefined ? headers : jsonHeaders,
        // orq's API never redirects; following one could carry the key elsewhere or loop (issue 8, point 8).
        redirect: 'manual',
        signal: deadline.signal,
      });
      if (rateLimitListeners.size > 0) {
        const info = readRateLimit(response.headers);
        if (info !== undefined) for (const listener of rateLimitListeners) listener(info);
      }
      if (operation === 'retrieve' && response.status === 404) {
        await response.body?.cancel();
        return undefined;
      }
      // Awaited here, so the deadline also covers reading the body.
      if (response.ok) return await identityFromAnswer(response, operation, externalId);
      throw new OrqHttpError(response.status, response.headers, redact(await readAtMost(response, errorBodyLimit)));
    } catch (error) {
      if (error instanceof OrqApiError) throw error;
      throw toApiError(connectionError(error, redact), operation, externalId, redact);
    } finally {
      clearTimeout(timer);
    }
  }

  async function identityFromAnswer(response: Response, operation: OrqOperation, externalId: string): Promise<OrqIdentity> {
    const invalid = (what: string) =>
      new OrqApiError(`orq answered the ${operation} of user ${JSON.stringify(externalId)} with HTTP ${response.status} and ${what}, not an identity.`, {
        operation, kind: 'invalid-response', externalId, statusCode: response.status,
      });
    const type = response.headers.get('content-type') ?? '';
    const text = await response.text();
    if (text.trim() === '') throw invalid('an empty body');
    let answer: unknown;
    try {
      // The body decides, not the content type: a JSON identity without one is read, as the SDK adapter reads it.
      answer = JSON.parse(text);
    } catch {
      throw invalid(/\bjson\b/i.test(type) ? 'a body that is not valid JSON' : `a body that is not JSON (content type ${type === '' ? 'none' : JSON.stringify(type)})`);
    }
    const identity = identityFromWire(answer);
    if (identity === undefined) throw invalid('JSON of another shape');
    return identity;
  }

  return {
    observeRateLimits(listener) {
      rateLimitListeners.add(listener);
      return () => rateLimitListeners.delete(listener);
    },
    async retrieve(externalId, { timeoutMs, includeMetrics }) {
      const url = () => `${collection}/${encodeURIComponent(externalId)}${includeMetrics === true ? '?include_metrics=true' : ''}`;
      return call('retrieve', externalId, url, { method: 'GET' }, timeoutMs);
    },
    async create(user, { timeoutMs }: CallOptions) {
      const body = JSON.stringify({ external_id: user.externalId, ...wireProfile(user) });
      return (await call('create', user.externalId, () => collection, { method: 'POST', body }, timeoutMs)) as OrqIdentity;
    },
    async update({ id, externalId }, changes, { timeoutMs }) {
      // By orq's id (see IdentityApi.update); errors still name the user by external id.
      const url = () => `${collection}/${encodeURIComponent(id)}`;
      const body = JSON.stringify(wireProfile(changes));
      return (await call('update', externalId, url, { method: 'PATCH', body }, timeoutMs)) as OrqIdentity;
    },
  };
}

/** Only ever serialised: JSON.stringify leaves out the fields that are undefined. */
function wireProfile(profile: Pick<OrqUser, ProfileField>): Record<string, unknown> {
  return {
    display_name: profile.displayName,
    email: profile.email,
    avatar_url: profile.avatarUrl,
    tags: profile.tags,
    metadata: profile.metadata,
  };
}

/**
 * fetch rejects with `TypeError: fetch failed` when the network fails and hides what happened in `cause`; name
 * it the way the SDK does (ConnectionError) with the cause's code, so the report says "ECONNREFUSED", not
 * "fetch failed". Anything else passes as it is: a timeout, our OrqHttpError, and what failed before a request
 * left the process (a URIError, an invalid header), which toApiError reports as not-sent.
 */
function connectionError(error: unknown, redact: Redact): unknown {
  if (!(error instanceof TypeError) || error.message !== 'fetch failed') return error;
  const cause = error.cause;
  const code = cause instanceof Error ? ((cause as { code?: unknown }).code ?? cause.message) : undefined;
  const connection = new Error(redact(code === undefined ? error.message : `${error.message}: ${String(code)}`), { cause });
  connection.name = 'ConnectionError';
  return connection;
}

/**
 * Reads a body until it has `limit` characters and drops the rest unread. The chunk that reaches the limit is kept
 * whole (one socket read): only an excerpt of it is ever quoted.
 */
async function readAtMost(response: Response, limit: number): Promise<string> {
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (text.length < limit) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  return text;
}
