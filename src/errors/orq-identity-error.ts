// The base of every error this package reports or passes to `next`, so apps can catch them as one family.

export type OrqIdentityErrorCode =
  | 'ORQ_IDENTITY_INVALID_USER'
  | 'ORQ_IDENTITY_INVALID_PROFILE_FIELD'
  | 'ORQ_IDENTITY_API_ERROR'
  | 'ORQ_IDENTITY_MISMATCH'
  | 'ORQ_IDENTITY_UNAVAILABLE'
  | 'ORQ_IDENTITY_GET_USER_FAILED'
  | 'ORQ_IDENTITY_REPEATED_FAILURES'
  | 'ORQ_IDENTITY_SHARED_STORE_UNAVAILABLE';

export interface OrqIdentityErrorOptions {
  code: OrqIdentityErrorCode;
  /** The external id of the user concerned, when there is one. */
  externalId?: string | undefined;
  /** The HTTP status an app should answer with, where one applies. */
  status?: number | undefined;
  cause?: unknown;
}

export class OrqIdentityError extends Error {
  override name: string = 'OrqIdentityError';
  readonly code: OrqIdentityErrorCode;
  readonly externalId: string | undefined;
  readonly status: number | undefined;

  constructor(message: string, options: OrqIdentityErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.externalId = options.externalId;
    this.status = options.status;
  }
}
