// The emulator's identity records: their wire shape, the API's validation rules, and usage accounting.
import { randomBytes } from 'node:crypto';

export interface WireIdentity {
  _id: string;
  external_id: string;
  workspace_id: string;
  display_name: string | null;
  email: string | null;
  avatar_url: string | null;
  tags: string[];
  metadata: Record<string, unknown>;
  created: string;
  updated: string;
}

export interface SeedIdentityInput {
  externalId: string;
  displayName?: string | null | undefined;
  email?: string | null | undefined;
  avatarUrl?: string | null | undefined;
  tags?: string[] | undefined;
  metadata?: Record<string, unknown> | undefined;
}

export interface IdentityUsage {
  totalCost: number;
  totalTokens: number;
  totalRequests: number;
  errorRate: number;
}

/** What one LLM call (invoke, chat, responses) adds to its identity's usage, so tests can predict metrics. */
export const EMULATED_CALL_USAGE = { promptTokens: 12, completionTokens: 8, cost: 0.001 } as const;

export const EXTERNAL_ID_MAX = 120;
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

// ---------------------------------------------------------------- helpers

export type JsonObject = Record<string, unknown>;

export function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function ulidLike(nowMs: number = Date.now()): string {
  let time = '';
  let rest = nowMs;
  for (let i = 0; i < 10; i += 1) {
    time = CROCKFORD.charAt(rest % 32) + time;
    rest = Math.floor(rest / 32);
  }
  // 256 is a multiple of 32, so masking keeps every symbol equally likely.
  const random = Array.from(randomBytes(16), (byte) => CROCKFORD.charAt(byte & 31)).join('');
  return time + random;
}

/** Strictly later than `previous`, so an update in the same millisecond still moves `updated`. */
function nextTimestamp(previous?: string): string {
  const floor = previous === undefined ? 0 : Date.parse(previous) + 1;
  return new Date(Math.max(Date.now(), floor)).toISOString();
}

// ---------------------------------------------------------------- validation

export interface ProfilePatch {
  display_name?: string | null;
  email?: string | null;
  avatar_url?: string | null;
  tags?: string[];
  metadata?: JsonObject;
}

export interface CreateInput extends ProfilePatch {
  external_id: string;
}

type Validation<T> = { ok: true; value: T } | { ok: false; error: string };

type FieldCheck = (value: unknown) => string | undefined;

function checkNullableString(field: string): FieldCheck {
  return (value) => (value === null || typeof value === 'string' ? undefined : `${field} must be a string or null`);
}

function checkEmail(value: unknown): string | undefined {
  if (value === null) return undefined;
  return typeof value === 'string' && EMAIL_PATTERN.test(value) ? undefined : 'email must be a valid email address or null';
}

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

function checkAvatarUrl(value: unknown): string | undefined {
  if (value === null) return undefined;
  return typeof value === 'string' && isHttpUrl(value) ? undefined : 'avatar_url must be an absolute http(s) URL or null';
}

function checkTags(value: unknown): string | undefined {
  const valid = Array.isArray(value) && value.every((tag) => typeof tag === 'string');
  return valid ? undefined : 'tags must be an array of strings';
}

function checkMetadata(value: unknown): string | undefined {
  return isPlainObject(value) ? undefined : 'metadata must be an object';
}

export function checkExternalId(value: unknown): string | undefined {
  if (value === undefined) return 'external_id is required';
  const valid = typeof value === 'string' && value.length >= 1 && value.length <= EXTERNAL_ID_MAX;
  return valid ? undefined : `external_id must be a string of 1 to ${EXTERNAL_ID_MAX} characters`;
}

const PROFILE_CHECKS: ReadonlyArray<readonly [keyof ProfilePatch, FieldCheck]> = [
  ['display_name', checkNullableString('display_name')],
  ['email', checkEmail],
  ['avatar_url', checkAvatarUrl],
  ['tags', checkTags],
  ['metadata', checkMetadata],
];

function firstProfileError(body: JsonObject): string | undefined {
  for (const [field, check] of PROFILE_CHECKS) {
    const error = field in body ? check(body[field]) : undefined;
    if (error !== undefined) return error;
  }
  return undefined;
}

/** Copies only profile fields that pass their check; callers decide whether a failure is an error. */
export function pickProfile(source: JsonObject): ProfilePatch {
  const patch: ProfilePatch = {};
  for (const [field, check] of PROFILE_CHECKS) {
    if (field in source && check(source[field]) === undefined) {
      Object.assign(patch, { [field]: structuredClone(source[field]) });
    }
  }
  return patch;
}

export function validatePatch(body: unknown): Validation<ProfilePatch> {
  if (!isPlainObject(body)) return { ok: false, error: 'Request body must be a JSON object' };
  const error = firstProfileError(body);
  return error === undefined ? { ok: true, value: pickProfile(body) } : { ok: false, error };
}

export function validateCreate(body: unknown): Validation<CreateInput> {
  const patch = validatePatch(body);
  if (!patch.ok) return patch;
  const externalId = isPlainObject(body) ? body.external_id : undefined;
  const error = checkExternalId(externalId);
  if (error !== undefined) return { ok: false, error };
  return { ok: true, value: { ...patch.value, external_id: String(externalId) } };
}

// ---------------------------------------------------------------- store

const ZERO_USAGE: IdentityUsage = { totalCost: 0, totalTokens: 0, totalRequests: 0, errorRate: 0 };

export class IdentityStore {
  private readonly byId = new Map<string, WireIdentity>();
  private readonly usage = new Map<string, IdentityUsage>();
  private readonly workspaceId: string;

  constructor(workspaceId: string) {
    this.workspaceId = workspaceId;
  }

  findByExternalId(externalId: string): WireIdentity | undefined {
    return this.all().find((identity) => identity.external_id === externalId);
  }

  /** The API accepts either id form; the internal `_id` wins when both could match. */
  find(idOrExternalId: string): WireIdentity | undefined {
    return this.byId.get(idOrExternalId) ?? this.findByExternalId(idOrExternalId);
  }

  create(input: CreateInput): WireIdentity {
    const now = nextTimestamp();
    const identity: WireIdentity = {
      _id: `contact_${ulidLike()}`,
      external_id: input.external_id,
      workspace_id: this.workspaceId,
      display_name: input.display_name ?? null,
      email: input.email ?? null,
      avatar_url: input.avatar_url ?? null,
      tags: input.tags ?? [],
      metadata: input.metadata ?? {},
      created: now,
      updated: now,
    };
    this.byId.set(identity._id, identity);
    return identity;
  }

  update(identity: WireIdentity, patch: ProfilePatch): WireIdentity {
    Object.assign(identity, patch, { updated: nextTimestamp(identity.updated) });
    return identity;
  }

  all(): WireIdentity[] {
    return [...this.byId.values()];
  }

  usageOf(externalId: string): IdentityUsage {
    return this.usage.get(externalId) ?? ZERO_USAGE;
  }

  setUsage(externalId: string, usage: IdentityUsage): void {
    this.usage.set(externalId, { ...usage });
  }

  /** Keeps the failed-request count stable, so a successful call lowers the error rate like the gateway would. */
  addSuccessfulCall(externalId: string): void {
    const before = this.usageOf(externalId);
    const failed = before.errorRate * before.totalRequests;
    const totalRequests = before.totalRequests + 1;
    this.usage.set(externalId, {
      totalCost: before.totalCost + EMULATED_CALL_USAGE.cost,
      totalTokens: before.totalTokens + EMULATED_CALL_USAGE.promptTokens + EMULATED_CALL_USAGE.completionTokens,
      totalRequests,
      errorRate: failed / totalRequests,
    });
  }
}
