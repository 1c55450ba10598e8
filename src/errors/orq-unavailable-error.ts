// What a request gets when its identity could not be had in time: 503, through Express's error handling.
import { OrqIdentityError } from './orq-identity-error.js';

/**
 * `overloaded`: more calls already wait than `maxQueue`, so this lookup failed at once without a call.
 * `budget`: the call budget (`budget` option) had no room for the call before its deadline.
 */
export type UnavailableReason = 'timeout' | 'circuit-open' | 'failed' | 'closed' | 'overloaded' | 'budget';

/**
 * Passed to `next(err)` when `failOpen` is false (its `status`, 503, is what Express's default error handler
 * answers with), and reported to `onError` when a request waited in vain.
 */
export class OrqUnavailableError extends OrqIdentityError {
  override name = 'OrqUnavailableError' as const;
  readonly reason: UnavailableReason;

  constructor(message: string, reason: UnavailableReason, externalId?: string, cause?: unknown) {
    super(message, { code: 'ORQ_IDENTITY_UNAVAILABLE', externalId, status: 503, cause });
    this.reason = reason;
  }
}
