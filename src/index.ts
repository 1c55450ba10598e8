// The public surface of express-orq-identity; everything else is internal.
export { orqIdentity, type OrqIdentityMiddleware, type OrqIdentityOptions } from './middleware.js';
export { createIdentityResolver, type CloseOptions, type IdentityResolver } from './resolver.js';
export type { CacheOptions, IdentityResolverOptions } from './options.js';
export type { OrqClient } from './transport/orq-sdk-client.js';
export { currentOrqIdentity, runWithOrqIdentity } from './context.js';
export { toPublicIdentity, type OrqPublicIdentity } from './public-identity.js';
export { defaultGetUser, type UserLike } from './user.js';
export type { OrqIdentity, OrqIdentityMetrics, OrqUser } from './types.js';
export {
  IdentityMismatchError,
  InvalidProfileFieldError,
  InvalidUserError,
  OrqApiError,
  OrqIdentityError,
  OrqUnavailableError,
  type OrqFailureKind,
  type OrqIdentityErrorCode,
  type OrqOperation,
  type UnavailableReason,
} from './errors/index.js';
