// Turning a registered identity into the `identity` field of an orq LLM call, which has a shape of its own.
import type { OrqIdentity } from './types.js';

/**
 * What @orq-ai/node's `PublicIdentity` accepts (the `identity` of deployment invocations and
 * router calls). Its `id` is the app's external id, not orq's `contact_…` id.
 */
export interface OrqPublicIdentity {
  id: string;
  displayName?: string;
  email?: string;
  tags?: string[];
}

/**
 * The identity for an LLM call. The gateway upserts what it receives, so only fields whose shape is the
 * same on both sides travel: `metadata` is left out because PublicIdentity wants an array of records
 * where the identity holds one object, and sending either would rewrite the identity's metadata.
 */
export function toPublicIdentity(identity: OrqIdentity): OrqPublicIdentity {
  const publicIdentity: OrqPublicIdentity = { id: identity.externalId };
  if (identity.displayName !== undefined) publicIdentity.displayName = identity.displayName;
  if (identity.email !== undefined) publicIdentity.email = identity.email;
  if (identity.tags !== undefined) publicIdentity.tags = [...identity.tags];
  return publicIdentity;
}
