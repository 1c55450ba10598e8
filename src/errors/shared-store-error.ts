// Reported (never thrown at a request) when the shared Redis store fails and the package falls back to this process alone.
import { OrqIdentityError } from './orq-identity-error.js';

export class SharedStoreError extends OrqIdentityError {
  override name = 'SharedStoreError' as const;
  /** How long the shared store is skipped before one command tries it again. */
  readonly retryInMs: number;

  constructor(message: string, retryInMs: number, cause?: unknown) {
    super(message, { code: 'ORQ_IDENTITY_SHARED_STORE_UNAVAILABLE', cause });
    this.retryInMs = retryInMs;
  }
}
