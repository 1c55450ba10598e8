// The `identity` of an LLM call's body in the gateway's own (snake_case) names, for callers that build the body themselves.
import { currentOrqUser } from '../context.js';

/** The gateway's body `identity`, in its wire names: what orq reads from a raw HTTP or OpenAI-SDK call. */
export interface OrqWireIdentity {
  /** The app's id of the user (the external id), not orq's `contact_…` id. */
  id: string;
  display_name?: string | undefined;
  email?: string | undefined;
  tags?: string[] | undefined;
}

/** What toWireIdentity reads: an OrqUser, an OrqIdentity or the current user alike. */
export interface WireIdentitySource {
  readonly externalId: string;
  readonly displayName?: string | undefined;
  readonly email?: string | undefined;
  readonly tags?: readonly string[] | undefined;
}

/**
 * The body `identity` for a raw call to orq (`fetch`, the OpenAI SDK's extra body fields), in the gateway's
 * snake_case: camelCase fields such as `displayName` would be silently ignored, since only @orq-ai/node
 * translates them. The gateway upserts the identity from it. `metadata` stays out, as in toPublicIdentity.
 * Without an argument: the current request's user, or undefined outside a request or for anonymous ones.
 */
export function toWireIdentity(source: WireIdentitySource): OrqWireIdentity;
export function toWireIdentity(): OrqWireIdentity | undefined;
export function toWireIdentity(source: WireIdentitySource | undefined = currentOrqUser()): OrqWireIdentity | undefined {
  if (source === undefined) return undefined;
  const wire: OrqWireIdentity = { id: source.externalId };
  if (source.displayName !== undefined) wire.display_name = source.displayName;
  if (source.email !== undefined) wire.email = source.email;
  if (source.tags !== undefined) wire.tags = [...source.tags];
  return wire;
}
