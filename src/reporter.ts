// Hands failures to onError: each once, however many places see it, and a repeating one once per window.
import { LRUCache } from 'lru-cache';
import { OrqIdentityError } from './errors/orq-identity-error.js';
import { OrqUnavailableError } from './errors/orq-unavailable-error.js';

/** Errors already handed to onError, so one failure is reported once however many places see it. */
const reportedErrors = new WeakSet<object>();

export class Reporter<TContext> {
  /** Reports already made in this window, so a user failing on every request is reported once per window. */
  private readonly recent: LRUCache<string, true> | undefined;

  constructor(
    private readonly onError: (error: OrqIdentityError, context: TContext) => void,
    memory: { max: number; ttl: number } | undefined,
  ) {
    this.recent = memory === undefined ? undefined : new LRUCache(memory);
  }

  report(error: OrqIdentityError, context: TContext | undefined): void {
    reportedErrors.add(error);
    this.onError(error, context as TContext);
  }

  /** Reports `error` unless one with the same `key` was reported within the window. */
  reportOnce(key: string, error: OrqIdentityError, context: TContext | undefined): void {
    if (this.recent?.has(key) === true) return;
    this.recent?.set(key, true);
    this.report(error, context);
  }

  /** Marks an error as reported without reporting it: something reported in its stead already. */
  markReported(error: object): void {
    reportedErrors.add(error);
  }

  /** Reports a background failure unless it already was, or is the circuit being open (reported once, when it opened). */
  reportBackgroundFailure(error: unknown, externalId: string, context: TContext | undefined): void {
    if (reportedErrors.has(error as object) || (error instanceof OrqUnavailableError && error.reason === 'circuit-open')) return;
    this.report(error instanceof OrqIdentityError ? error : wrapUnexpected(error, externalId), context);
  }
}

export function wrapUnexpected(error: unknown, externalId: string): OrqIdentityError {
  return new OrqUnavailableError(
    `Unexpected failure while resolving user ${JSON.stringify(externalId)}: ${error instanceof Error ? error.message : String(error)}`,
    'failed', externalId, error,
  );
}
