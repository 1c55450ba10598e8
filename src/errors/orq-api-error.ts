// A call to the orq API that failed, classified by what the caller should do about it.
import { OrqIdentityError } from './orq-identity-error.js';

export type OrqOperation = 'retrieve' | 'create' | 'update';

/**
 * - `http`: orq answered with an error status (see `statusCode`)
 * - `rate-limited`: 429; `retryAfterMs` says when to call again
 * - `unauthorized`: 401/403, the API key is wrong or lacks permission
 * - `network`: connection refused, reset, DNS
 * - `timeout`: no answer before the deadline
 * - `invalid-response`: a 2xx whose body is not an identity (not JSON, empty, another shape), or redirects in a loop
 * - `not-sent`: the request could not be built (the SDK or the runtime refused it before anything left the
 *   process); says nothing about orq, so it never counts toward the circuit breaker and is never retried
 */
export type OrqFailureKind = 'http' | 'rate-limited' | 'unauthorized' | 'network' | 'timeout' | 'invalid-response' | 'not-sent';

export interface OrqApiErrorOptions {
  operation: OrqOperation;
  kind: OrqFailureKind;
  externalId: string;
  statusCode?: number | undefined;
  retryAfterMs?: number | undefined;
  cause?: unknown;
}

export class OrqApiError extends OrqIdentityError {
  override name = 'OrqApiError' as const;
  readonly operation: OrqOperation;
  readonly kind: OrqFailureKind;
  /** The HTTP status orq answered with; undefined when no answer came. */
  readonly statusCode: number | undefined;
  /** From `Retry-After` on a 429. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options: OrqApiErrorOptions) {
    super(message, { code: 'ORQ_IDENTITY_API_ERROR', externalId: options.externalId, cause: options.cause });
    this.operation = options.operation;
    this.kind = options.kind;
    this.statusCode = options.statusCode;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** Worth another try later: the fault is orq's or the network's, not this user's. */
  get isOutage(): boolean {
    if (this.kind === 'not-sent') return false;
    return this.kind !== 'http' && this.kind !== 'invalid-response'
      ? true
      : this.statusCode !== undefined && this.statusCode >= 500;
  }
}
