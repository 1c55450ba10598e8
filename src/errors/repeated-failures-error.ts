// Many failures of one kind in a short time, reported as one: onError must not flood the app's logs under overload.
import { OrqIdentityError } from './orq-identity-error.js';

/**
 * Stands for `count` reports of one kind (same class, code, reason or kind, and status) that came within
 * `windowMs` after the first few of that window had been reported one by one. `cause` is the last of them.
 */
export class RepeatedFailuresError extends OrqIdentityError {
  override name = 'RepeatedFailuresError' as const;
  /** How many reports this one stands for. */
  readonly count: number;
  /** The window they came in, in milliseconds. */
  readonly windowMs: number;

  constructor(count: number, windowMs: number, last: OrqIdentityError) {
    super(
      `${count} more ${last.name} (${categoryLabel(last)}) in the last ${Math.round(windowMs / 1000)} s were counted rather than reported one by one; ` +
        `the last: ${last.message}`,
      { code: 'ORQ_IDENTITY_REPEATED_FAILURES', externalId: last.externalId, status: last.status, cause: last },
    );
    this.count = count;
    this.windowMs = windowMs;
  }
}

/** What makes two reports "of one kind": enough to tell apart an outage, an overload and bad user data. */
export function reportCategory(error: OrqIdentityError): string {
  return `${error.name}:${error.code}:${categoryLabel(error)}`;
}

function categoryLabel(error: OrqIdentityError): string {
  const detail = error as { reason?: unknown; kind?: unknown; statusCode?: unknown; field?: unknown };
  return [detail.reason, detail.kind, detail.statusCode, detail.field].filter((part) => part !== undefined).map(String).join(', ') || error.code;
}
