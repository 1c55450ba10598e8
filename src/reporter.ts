// Hands failures to onError: each once, however many places see it, and a repeating one once per window.
import { LRUCache } from 'lru-cache';
import { OrqIdentityError } from './errors/orq-identity-error.js';
import { OrqUnavailableError } from './errors/orq-unavailable-error.js';
import { RepeatedFailuresError, reportCategory } from './errors/repeated-failures-error.js';
import { errorText } from './user.js';

/** Errors already handed to onError, so one failure is reported once however many places see it. */
const reportedErrors = new WeakSet<object>();

/**
 * Reports of one kind (see reportCategory) beyond this many within reportWindowMs are counted instead, and
 * summed up in one RepeatedFailuresError when the window ends: 20 000 new users during an outage or an overload
 * once made ~70 000 onError calls in two minutes.
 */
export const reportBurst = 10;
export const reportWindowMs = 10_000;

interface Tally<TContext> {
  startedAt: number;
  reported: number;
  counted: number;
  last: OrqIdentityError | undefined;
  lastContext: TContext | undefined;
}

export class Reporter<TContext> {
  /** Reports already made in this window, so a user failing on every request is reported once per window. */
  private readonly recent: LRUCache<string, true> | undefined;
  private readonly tallies = new Map<string, Tally<TContext>>();
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly onError: (error: OrqIdentityError, context: TContext | undefined) => void,
    memory: { max: number; ttl: number } | undefined,
  ) {
    this.recent = memory === undefined ? undefined : new LRUCache(memory);
  }

  report(error: OrqIdentityError, context: TContext | undefined): void {
    reportedErrors.add(error);
    const category = reportCategory(error);
    const now = Date.now();
    let tally = this.tallies.get(category);
    if (tally === undefined || now - tally.startedAt >= reportWindowMs) {
      if (tally !== undefined) this.summarise(tally);
      tally = { startedAt: now, reported: 0, counted: 0, last: undefined, lastContext: undefined };
      this.tallies.set(category, tally);
    }
    if (tally.reported < reportBurst) {
      tally.reported += 1;
      this.onError(error, context);
      return;
    }
    tally.counted += 1;
    tally.last = error;
    tally.lastContext = context;
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, reportWindowMs).unref();
  }

  /** Reports what was counted so far, one RepeatedFailuresError per kind; close() calls it so nothing is lost. */
  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    for (const tally of this.tallies.values()) this.summarise(tally);
    this.tallies.clear();
  }

  private summarise(tally: Tally<TContext>): void {
    if (tally.counted === 0 || tally.last === undefined) return;
    const summary = new RepeatedFailuresError(tally.counted, Math.max(1, Date.now() - tally.startedAt), tally.last);
    tally.counted = 0;
    reportedErrors.add(summary);
    this.onError(summary, tally.lastContext);
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
    `Unexpected failure while resolving user ${JSON.stringify(externalId)}: ${errorText(error)}`,
    'failed', externalId, error,
  );
}
