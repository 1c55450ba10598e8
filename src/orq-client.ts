// What both transports share: the identity endpoints' contract, how a failed call reads (by its fields), and the wire shapes we accept.
import { OrqApiError, type OrqFailureKind, type OrqOperation } from './errors/orq-api-error.js';
import type { RateLimitInfo } from './calls/rate-limit.js';
import type { OrqIdentity, OrqIdentityMetrics, OrqUser, ProfileField } from './types.js';
import { isText } from './user.js';

export interface CallOptions {
  /** Milliseconds this one HTTP call may take. */
  timeoutMs: number;
}

/** The identity endpoints, with answers normalised to OrqIdentity and failures to OrqApiError. */
export interface IdentityApi {
  /** undefined when orq answers 404. */
  retrieve(externalId: string, options: CallOptions & { includeMetrics?: boolean }): Promise<OrqIdentity | undefined>;
  create(user: OrqUser, options: CallOptions): Promise<OrqIdentity>;
  /**
   * PATCHes by orq's id of the identity, never by external id: orq reads the path as an orq id first, so an external
   * id that is another identity's `contact_…` id would change that identity. `externalId` names the user in errors.
   */
  update(identity: Pick<OrqIdentity, 'id' | 'externalId'>, changes: Pick<OrqUser, ProfileField>, options: CallOptions): Promise<OrqIdentity>;
  /** Tells `listener` what every answer's X-RateLimit-* headers say (429s included); returns how to stop listening. */
  observeRateLimits(listener: (info: RateLimitInfo) => void): () => void;
}

/**
 * Removes the API key, and any `Bearer …` credential, from text that came back from the SDK or the wire:
 * a gateway may echo the Authorization header in an error body, and the SDK quotes a refused header value.
 */
export function redactorFor(apiKey: string | undefined): (text: string) => string {
  // A very short key would turn every occurrence of a common substring into noise; "Bearer …" still covers it.
  const key = apiKey !== undefined && apiKey.trim().length >= 8 ? apiKey.trim() : undefined;
  return (text) => {
    // Quoted first ("Bearer …" as the runtime quotes a refused header, newlines included), then bare.
    let redacted = text
      .replace(/(["'])Bearer\s[^"']*\1/gi, '$1Bearer [redacted]$1')
      .replace(/Bearer\s+(?!\[redacted\])[^\s"',;\\]+/gi, 'Bearer [redacted]');
    if (key !== undefined) redacted = redacted.split(key).join('[redacted]');
    return redacted;
  };
}

export type Redact = (text: string) => string;

/** Failures of the SDK or the runtime before a request left the process: they say nothing about orq. */
const notSentNames = new Set(['URIError', 'SDKValidationError', 'InvalidRequestError']);

/** Classifies a failed call by its fields (the SDK's errors, and the fetch transport's, carry the same ones). */
export function toApiError(error: unknown, operation: OrqOperation, externalId: string, redact: Redact): OrqApiError {
  const status = readStatus(error);
  const name = readName(error) ?? 'Error';
  const subject = `orq ${operation} of user ${JSON.stringify(externalId)}`;
  const cause = redactedCopy(error, redact);
  const fail = (message: string, kind: OrqFailureKind, extra: { statusCode?: number; retryAfterMs?: number | undefined } = {}): OrqApiError =>
    new OrqApiError(redact(message), { operation, kind, externalId, cause, ...extra });
  if (status === undefined) {
    const detail = `${name}: ${readMessage(error)}`;
    if (name === 'RequestTimeoutError' || name === 'TimeoutError' || name === 'AbortError' || name === 'RequestAbortedError') {
      return fail(`${subject} got no answer in time.`, 'timeout');
    }
    // The SDK parses a 2xx JSON body with JSON.parse: invalid JSON or an empty body ends here, after orq answered.
    if (name === 'SyntaxError') return fail(`${subject} was answered with a body that is not JSON (${detail}).`, 'invalid-response');
    if (someCauseSays(error, /redirect count exceeded/i)) {
      return fail(`${subject} was answered with redirects in a loop; orq's API does not redirect: check \`serverURL\` and any proxy on the way.`, 'invalid-response');
    }
    if (notSentNames.has(name) || (name === 'TypeError' && /header|ByteString/i.test(readMessage(error)))) {
      return fail(`${subject} could not be sent (${detail}); nothing left the process, so orq is not blamed for it.`, 'not-sent');
    }
    return fail(`${subject} could not reach orq (${detail}).`, 'network');
  }
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(readHeader(error, 'retry-after'));
    const wait = retryAfterMs === undefined ? '' : `; Retry-After ${Math.ceil(retryAfterMs / 1000)} s`;
    return fail(`${subject} was rate-limited (HTTP 429${wait}).`, 'rate-limited', { statusCode: status, retryAfterMs });
  }
  if (status === 401 || status === 403) {
    return fail(
      `${subject} was refused with HTTP ${status}: check the orq API key (ORQ_API_KEY or the client you passed) and its permissions.`,
      'unauthorized', { statusCode: status },
    );
  }
  if (status >= 300 && status < 400) {
    const location = readHeader(error, 'location');
    return fail(
      `${subject} was redirected (HTTP ${status}${location === undefined ? '' : ` to ${JSON.stringify(location.slice(0, 200))}`}); ` +
        "redirects from orq's API are not followed: set `serverURL` to the address orq answers at.",
      'http', { statusCode: status },
    );
  }
  return fail(`${subject} failed with HTTP ${status}${readBodyExcerpt(error)}.`, 'http', { statusCode: status });
}

/**
 * What an error keeps as `cause`: name, code and redacted message of the SDK's error and of its causes, never
 * the SDK error itself, whose body, headers and request (Authorization included) util.inspect would print.
 */
export function redactedCopy(error: unknown, redact: Redact, depth = 0): Error {
  const inner = depth < 3 && isRecord(error) ? error.cause : undefined;
  const copy = new Error(redact(readMessage(error, 500)), inner === undefined || inner === null ? undefined : { cause: redactedCopy(inner, redact, depth + 1) });
  copy.name = readName(error) ?? 'Error';
  const code = isRecord(error) ? error.code : undefined;
  if (typeof code === 'string' || typeof code === 'number') Object.assign(copy, { code });
  const status = readStatus(error);
  if (status !== undefined) Object.assign(copy, { statusCode: status });
  // The stack would point into this function; the original stack is the SDK's, and may quote the key.
  copy.stack = `${copy.name}: ${copy.message}`;
  return copy;
}

/** Whether the message of the error or of one of its first three causes matches; the bound also ends a cycle of causes. */
function someCauseSays(error: unknown, pattern: RegExp, depth = 0): boolean {
  return depth <= 3 && isRecord(error) && (pattern.test(readMessage(error, 500)) || someCauseSays(error.cause, pattern, depth + 1));
}

/** undefined for anything JSON.parse refuses, a blank text included. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Accepts the identity wrapped (`{ identity }`, the SDK's shape) or bare with nulls (the documented shape),
 * snake or camel case. Create answers come one level deeper: the SDK returns `{ headers, result }` and its
 * ResponseValidationError keeps `{ HttpMeta, Headers, Result }` as the raw value.
 */
export function identityFromWire(answer: unknown): OrqIdentity | undefined {
  let wire = answer;
  if (isRecord(wire) && isRecord(wire.result ?? wire.Result) && ('headers' in wire || 'Headers' in wire)) wire = wire.result ?? wire.Result;
  if (isRecord(wire) && isRecord(wire.identity)) wire = wire.identity;
  if (!isRecord(wire)) return undefined;
  const id = pick(wire, '_id', 'id');
  const externalId = pick(wire, 'external_id', 'externalId');
  // The id is the path of this identity's profile-sync PATCH: one that cannot address it there is not orq's.
  if (!isText(id) || id === '' || id === '.' || id === '..' || typeof externalId !== 'string') return undefined;

  const identity: { -readonly [K in keyof OrqIdentity]: OrqIdentity[K] } = { id, externalId };
  const workspaceId = pick(wire, 'workspace_id', 'workspaceId');
  if (typeof workspaceId === 'string') identity.workspaceId = workspaceId;
  const displayName = pick(wire, 'display_name', 'displayName');
  if (typeof displayName === 'string') identity.displayName = displayName;
  if (typeof wire.email === 'string') identity.email = wire.email;
  const avatarUrl = pick(wire, 'avatar_url', 'avatarUrl');
  if (typeof avatarUrl === 'string') identity.avatarUrl = avatarUrl;
  if (Array.isArray(wire.tags)) identity.tags = Object.freeze(wire.tags.filter((tag): tag is string => typeof tag === 'string'));
  if (isRecord(wire.metadata)) identity.metadata = Object.freeze({ ...wire.metadata });
  if (typeof wire.created === 'string') identity.created = wire.created;
  if (typeof wire.updated === 'string') identity.updated = wire.updated;
  const metrics = metricsFromWire(wire.metrics);
  if (metrics !== undefined) identity.metrics = metrics;
  // Frozen because one cached object is attached to many requests: no request may change what another sees.
  return Object.freeze(identity);
}

function metricsFromWire(wire: unknown): OrqIdentityMetrics | undefined {
  if (!isRecord(wire)) return undefined;
  const totalCost = pick(wire, 'total_cost', 'totalCost');
  const totalTokens = pick(wire, 'total_tokens', 'totalTokens');
  const totalRequests = pick(wire, 'total_requests', 'totalRequests');
  const errorRate = pick(wire, 'error_rate', 'errorRate');
  if (typeof totalCost !== 'number' || typeof totalTokens !== 'number' || typeof totalRequests !== 'number' || typeof errorRate !== 'number') {
    return undefined;
  }
  return Object.freeze({ totalCost, totalTokens, totalRequests, errorRate });
}

function pick(record: Record<string, unknown>, snake: string, camel: string): unknown {
  return record[snake] ?? record[camel];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function readStatus(error: unknown): number | undefined {
  const status = isRecord(error) ? error.statusCode : undefined;
  return typeof status === 'number' ? status : undefined;
}

function readName(error: unknown): string | undefined {
  if (!isRecord(error)) return undefined;
  const name = error.name;
  return typeof name === 'string' ? name : undefined;
}

function readMessage(error: unknown, max = 160): string {
  let message: unknown;
  try {
    message = isRecord(error) ? error.message : String(error);
  } catch {
    // A `message` getter, or a revoked Proxy, that throws when read: there is no message to quote.
  }
  const text = typeof message === 'string' ? message : 'no message';
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function readHeader(error: unknown, name: string): string | undefined {
  const headers = (error as { headers?: unknown }).headers;
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  return undefined;
}

function readBodyExcerpt(error: unknown): string {
  const body = (error as { body?: unknown }).body;
  if (typeof body !== 'string' || body.length === 0) return '';
  return `: ${body.length > 200 ? `${body.slice(0, 200)}…` : body}`;
}

/** Retry-After is either seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
