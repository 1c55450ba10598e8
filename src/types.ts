// The shapes users of the package see: the user an app hands us and the identity we hand back.

/** A user of the app, as `getUser` returns it. Only `externalId` is required. */
export interface OrqUser {
  /** The app's own id for the user; orq's `external_id` (1–120 characters). */
  externalId: string;
  displayName?: string | undefined;
  email?: string | undefined;
  avatarUrl?: string | undefined;
  tags?: string[] | undefined;
  metadata?: Record<string, unknown> | undefined;
}

/** Usage of the identity over the last 30 days, as orq reports it with `include_metrics`. */
export interface OrqIdentityMetrics {
  /** Total cost in dollars. */
  totalCost: number;
  totalTokens: number;
  totalRequests: number;
  /** Ratio between 0 and 1. */
  errorRate: number;
}

/** An orq identity, camelCased and without `null`s, whatever shape the API answered with. */
export interface OrqIdentity {
  /** orq's id of the identity (`contact_…`). */
  readonly id: string;
  /** The app's id of the user. */
  readonly externalId: string;
  readonly workspaceId?: string | undefined;
  readonly displayName?: string | undefined;
  readonly email?: string | undefined;
  readonly avatarUrl?: string | undefined;
  readonly tags?: readonly string[] | undefined;
  readonly metadata?: Readonly<Record<string, unknown>> | undefined;
  readonly created?: string | undefined;
  readonly updated?: string | undefined;
  /** Present when the `metrics` option is on. */
  readonly metrics?: OrqIdentityMetrics | undefined;
}

/** The profile fields of a user that orq stores and that profile sync compares. */
export const profileFields = ['displayName', 'email', 'avatarUrl', 'tags', 'metadata'] as const;
export type ProfileField = (typeof profileFields)[number];
