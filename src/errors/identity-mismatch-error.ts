// orq answered with an identity that belongs to someone else; we never attach it.
import { OrqIdentityError } from './orq-identity-error.js';

/**
 * Retrieve accepts an identity id as well as an external id, so an external id that
 * looks like another identity's `contact_…` id can fetch that other identity.
 */
export class IdentityMismatchError extends OrqIdentityError {
  override name = 'IdentityMismatchError' as const;
  /** The external id of the identity orq returned. */
  readonly receivedExternalId: string;

  constructor(externalId: string, receivedExternalId: string) {
    super(
      `orq returned the identity of external id ${JSON.stringify(receivedExternalId)} when asked for ${JSON.stringify(externalId)}; ` +
        'it was not attached. An external id that equals another identity\'s "contact_…" id cannot be resolved by retrieve: give that user another external id.',
      { code: 'ORQ_IDENTITY_MISMATCH', externalId },
    );
    this.receivedExternalId = receivedExternalId;
  }
}
