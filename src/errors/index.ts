// The error family, one class per file.
export { OrqIdentityError, type OrqIdentityErrorCode } from './orq-identity-error.js';
export { InvalidUserError } from './invalid-user-error.js';
export { InvalidProfileFieldError } from './invalid-profile-field-error.js';
export { OrqApiError, type OrqFailureKind, type OrqOperation } from './orq-api-error.js';
export { IdentityMismatchError } from './identity-mismatch-error.js';
export { OrqUnavailableError, type UnavailableReason } from './orq-unavailable-error.js';
export { RepeatedFailuresError } from './repeated-failures-error.js';
export { SharedStoreError } from './shared-store-error.js';
