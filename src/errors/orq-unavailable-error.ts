// What a request gets when its identity could not be had in time: 503, through Express's error handling.
import { OrqIdentityError } from './orq-identity-error.js';

export type UnavailableReason = 'timeout' | 'circuit-open' | 'failed' | 'closed';

/** Passed to `next(err)` when `failOpen` is false, and reported to `onError` when a request waited in vain. */
export class OrqUnavailableError extends OrqIdentityError {
  override name = 'OrqUnavailableError' as const;
  readonly reason: UnavailableReason;
  /** Express's default error handler answers with this status. */
  readonly statusCode = 503;

  constructor(message: string, reason: UnavailableReason, externalId?: string, cause?: unknown) {
    super(message, { code: 'ORQ_IDENTITY_UNAVAILABLE', externalId, status: 503, cause });
    this.reason = reason;
  }
}
