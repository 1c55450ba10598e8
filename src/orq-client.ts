// The only file that talks to @orq-ai/node: the calls we make, how their errors read, and the wire shapes we accept.
import { OrqApiError, type OrqFailureKind, type OrqOperation } from './errors/orq-api-error.js';
import type { OrqClient } from './transport/orq-sdk-client.js';
import type { OrqIdentity, OrqIdentityMetrics, OrqUser, ProfileField } from './types.js';

export interface CallOptions {
  /** Milliseconds this one HTTP call may take. */
  timeoutMs: number;
}

/** The identity endpoints, with answers normalised to OrqIdentity and failures to OrqApiError. */
export interface IdentityApi {
  /** undefined when orq answers 404. */
  retrieve(externalId: string, options: CallOptions & { includeMetrics?: boolean }): Promise<OrqIdentity | undefined>;
  create(user: OrqUser, options: CallOptions): Promise<OrqIdentity>;
  update(externalId: string, changes: Pick<OrqUser, ProfileField>, options: CallOptions): Promise<OrqIdentity>;
}

// The SDK retries on its own only when told to; we own retries (inside our deadlines), so say so explicitly.
const noRetries = { strategy: 'none' } as const;

export function createIdentityApi(client: OrqClient): IdentityApi {
  return {
    async retrieve(externalId, { timeoutMs, includeMetrics }) {
      try {
        const answer = await client.identities.retrieve(
          includeMetrics === true ? { id: externalId, includeMetrics: true } : { id: externalId },
          { timeoutMs, retries: noRetries },
        );
        return identityFrom(answer, 'retrieve', externalId);
      } catch (error) {
        if (readStatus(error) === 404) return undefined;
        return identityFromRejected(error, 'retrieve', externalId);
      }
    },
    async create(user, { timeoutMs }) {
      try {
        const answer = await client.identities.create(user, { timeoutMs, retries: noRetries });
        return identityFrom(answer, 'create', user.externalId);
      } catch (error) {
        return identityFromRejected(error, 'create', user.externalId);
      }
    },
    async update(externalId, changes, { timeoutMs }) {
      try {
        const answer = await client.identities.update(
          { id: externalId, updateIdentityRequest: changes },
          { timeoutMs, retries: noRetries },
        );
        return identityFrom(answer, 'update', externalId);
      } catch (error) {
        return identityFromRejected(error, 'update', externalId);
      }
    },
  };
}

function identityFrom(answer: unknown, operation: OrqOperation, externalId: string): OrqIdentity {
  const identity = identityFromWire(answer);
  if (identity === undefined) {
    throw new OrqApiError(`orq answered the ${operation} of user ${JSON.stringify(externalId)} with something that is not an identity.`, {
      operation,
      kind: 'invalid-response',
      externalId,
    });
  }
  return identity;
}

/**
 * The SDK validates answers against its own schema (wrapped in `{ identity }`, no nulls). orq's published
 * documents show the identity bare, with nulls: the SDK rejects that as ResponseValidationError but keeps
 * the parsed body in `rawValue`, which we accept. Errors are read by their fields, never `instanceof`,
 * so a second copy of the SDK in the app does not break us.
 */
function identityFromRejected(error: unknown, operation: OrqOperation, externalId: string): OrqIdentity {
  const status = readStatus(error);
  if (readName(error) === 'ResponseValidationError' && status !== undefined && status >= 200 && status < 300) {
    return identityFrom((error as { rawValue?: unknown }).rawValue, operation, externalId);
  }
  throw toApiError(error, operation, externalId);
}

export function toApiError(error: unknown, operation: OrqOperation, externalId: string): OrqApiError {
  const status = readStatus(error);
  const name = readName(error);
  const subject = `orq ${operation} of user ${JSON.stringify(externalId)}`;
  if (status === undefined) {
    const kind: OrqFailureKind =
      name === 'RequestTimeoutError' || name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'network';
    const what = kind === 'timeout' ? 'got no answer in time' : `could not reach orq (${name ?? 'Error'}: ${readMessage(error)})`;
    return new OrqApiError(`${subject} ${what}.`, { operation, kind, externalId, cause: error });
  }
  const body = readBodyExcerpt(error);
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(readHeader(error, 'retry-after'));
    const wait = retryAfterMs === undefined ? '' : `; Retry-After ${Math.ceil(retryAfterMs / 1000)} s`;
    return new OrqApiError(`${subject} was rate-limited (HTTP 429${wait}).`, {
      operation, kind: 'rate-limited', externalId, statusCode: status, retryAfterMs, cause: error,
    });
  }
  if (status === 401 || status === 403) {
    return new OrqApiError(
      `${subject} was refused with HTTP ${status}: check the orq API key (ORQ_API_KEY or the client you passed) and its permissions.`,
      { operation, kind: 'unauthorized', externalId, statusCode: status, cause: error },
    );
  }
  return new OrqApiError(`${subject} failed with HTTP ${status}${body}.`, {
    operation, kind: 'http', externalId, statusCode: status, cause: error,
  });
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
  if (typeof id !== 'string' || typeof externalId !== 'string') return undefined;

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

function readStatus(error: unknown): number | undefined {
  const status = isRecord(error) || error instanceof Error ? (error as { statusCode?: unknown }).statusCode : undefined;
  return typeof status === 'number' ? status : undefined;
}

function readName(error: unknown): string | undefined {
  return error instanceof Error || isRecord(error) ? String((error as { name?: unknown }).name) : undefined;
}

function readMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > 160 ? `${message.slice(0, 160)}…` : message;
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
