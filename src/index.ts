// The public surface of express-orq-identity; everything else is internal.
export { orqIdentity, type OrqIdentityMiddleware, type OrqIdentityOptions } from './middleware.js';
export { createIdentityResolver, type CloseOptions, type IdentityResolver, type ResolvableUser } from './resolver.js';
export type { BacklogOptions, BudgetOptions, CacheOptions, IdentityResolverOptions } from './options.js';
export type { LookupOrderOption } from './registration/lookup-order.js';
export type { SharedOptions } from './store/shared-options.js';
export type { RedisClientLike, SendCommand } from './store/command.js';
export { currentOrqIdentity, currentOrqUser, runWithOrqIdentity, runWithOrqUser, type OrqRequestUser } from './context.js';
export type { OrqIdentityStats } from './observability/stats.js';
export {
  orqIdentityChannels,
  type OrqCallEvent,
  type OrqCallOutcome,
  type OrqLookupEvent,
  type OrqBacklogEvent,
  type OrqLookupOutcome,
} from './observability/channels.js';
export type { OrqClient } from './transport/orq-sdk-client.js';
export { toPublicIdentity, type OrqPublicIdentity } from './public-identity.js';
export { orqIdentityRequestHook, withOrqIdentity, type WithOrqIdentityOptions } from './attribution/orq-sdk.js';
export { orqIdentityModelMiddleware, type OrqIdentityModelMiddleware } from './attribution/ai-sdk.js';
export { orqIdentityCallOptions, type OrqIdentityCallOptions } from './attribution/langchain.js';
export { orqIdentityFetch, type OrqIdentityFetchOptions } from './attribution/fetch.js';
export { toWireIdentity, type OrqWireIdentity, type WireIdentitySource } from './attribution/wire-identity.js';
export { defaultGetUser, type UserLike, type UserWithNumericId } from './user.js';
export type { OrqIdentity, OrqIdentityMetrics, OrqUser } from './types.js';
export {
  IdentityMismatchError,
  InvalidProfileFieldError,
  InvalidUserError,
  OrqApiError,
  OrqIdentityError,
  OrqUnavailableError,
  RepeatedFailuresError,
  SharedStoreError,
  type OrqFailureKind,
  type OrqIdentityErrorCode,
  type OrqOperation,
  type UnavailableReason,
} from './errors/index.js';
