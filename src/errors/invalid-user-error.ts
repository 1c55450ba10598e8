// A user that cannot be sent to orq as it is.
import { OrqIdentityError } from './orq-identity-error.js';

/**
 * The user was skipped: `getUser` gave something that is not a valid external id.
 * The request goes on without an identity; nothing was sent to orq.
 */
export class InvalidUserError extends OrqIdentityError {
  override name = 'InvalidUserError' as const;

  constructor(message: string, externalId?: string) {
    super(message, { code: 'ORQ_IDENTITY_INVALID_USER', externalId });
  }
}
