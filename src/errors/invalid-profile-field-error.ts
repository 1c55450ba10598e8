// An optional profile field that failed orq's documented format; the user is registered without it.
import { OrqIdentityError } from './orq-identity-error.js';

/** One optional profile field failed orq's documented format and was left out; the user is registered without it. */
export class InvalidProfileFieldError extends OrqIdentityError {
  override name = 'InvalidProfileFieldError' as const;
  readonly field: string;

  constructor(message: string, externalId: string, field: string) {
    super(message, { code: 'ORQ_IDENTITY_INVALID_PROFILE_FIELD', externalId });
    this.field = field;
  }
}
