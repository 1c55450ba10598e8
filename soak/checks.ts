// What the soak checks while it runs: every answer's and every LLM call's identity belongs to the request's user,
// no request fails or hangs, and what the fleet asks orq, per user and per minute. Fed by the driver (answers) and by
// the emulator's call log (identity calls, LLM calls); read by the report and the chart.
import type { EmulatorCall, WireIdentity } from '../src/testing/index.js';
import { percentile } from './stats.js';

export interface Answer {
  /** When the request was sent (ms since the run started). */
  at: number;
  requestId: string;
  /** The request's user; undefined for an anonymous (never authenticated) request. */
  user: string | undefined;
  llm: boolean;
  ms: number;
  /** HTTP status, or 0 when the request failed without one (reset, refused, timed out). */
  status: number;
  error?: string | undefined;
  body?: unknown;
}

/** One slice of the run (a minute in long runs, down to 5 s in short ones), for the chart and the JSON. */
export interface Bucket {
  /** Start of the slice, in ms since the run started. */
  startMs: number;
  requests: number;
  failed: number;
  p99Ms: number;
  /** Identity calls orq received (retrieve, create, update, list) in the slice. */
  orqCalls: number;
  /** The same as a rate: calls per minute. */
  orqCallsPerMinute: number;
  /** Users orq knows at the end of the slice (created, or found by a retrieve). */
  registeredUsers: number;
}

/** Examples kept of each kind of violation, so a failed run says what went wrong. */
const EXAMPLES = 20;
const IDENTITY_OPERATIONS = new Set(['retrieve', 'create', 'update', 'list']);
const LLM_OPERATIONS = new Set(['invoke', 'chat', 'responses']);

export class Checks {
  requests = 0;
  failedRequests = 0;
  wrongUser = 0;
  llmCalls = 0;
  llmCallsAnonymous = 0;
  /** LLM calls of an authenticated user that reached orq without an identity. */
  llmCallsUnattributed = 0;
  orqCalls = 0;
  readonly orqCallsByOperation: Record<string, number> = {};
  readonly orqCallsByStatus: Record<string, number> = {};
  /** Calls for a user until orq first knew it (its retrieve 404 and create, retries under faults). */
  registrationCalls = 0;
  /** Calls for a user orq already knew: refreshes, re-lookups by a cold instance or after Redis lost its keys. */
  upkeepCalls = 0;
  readonly failures: string[] = [];
  readonly violations: string[] = [];
  private readonly latencies: number[] = [];
  private readonly buckets = new Map<number, { requests: number; failed: number; latencies: number[]; orqCalls: number }>();
  /** The identity id each user was given, and the user each identity id was given to. */
  private readonly idOfUser = new Map<string, string>();
  private readonly userOfId = new Map<string, string>();
  private readonly registered = new Set<string>();
  private readonly registeredByBucket = new Map<number, number>();
  /** LLM requests whose call orq has not been seen yet: request id → user (null: anonymous). */
  private readonly pendingLlm = new Map<string, string | null>();
  /** Users seen per hour-long slice of the run, for active user-hours. */
  private readonly usersByHour = new Map<number, Set<string>>();

  constructor(
    private readonly startedAt: number,
    /** Length of the timeline's slices. */
    readonly bucketMs = 60_000,
  ) {}

  /** Before the request goes out: an LLM request's call will be matched to its user. */
  expectLlm(requestId: string, user: string | undefined): void {
    this.pendingLlm.set(requestId, user ?? null);
  }

  answer(answer: Answer): void {
    this.requests += 1;
    const bucket = this.bucket(answer.at);
    bucket.requests += 1;
    bucket.latencies.push(answer.ms);
    this.latencies.push(answer.ms);
    if (answer.user !== undefined) {
      const hour = Math.floor(answer.at / 3_600_000);
      let users = this.usersByHour.get(hour);
      if (users === undefined) this.usersByHour.set(hour, (users = new Set()));
      users.add(answer.user);
    }
    const body = answer.body as { identity?: unknown; externalId?: unknown; llm?: unknown } | undefined;
    if (answer.status !== 200 || body === undefined || body.llm !== answer.llm) {
      this.failedRequests += 1;
      bucket.failed += 1;
      this.pendingLlm.delete(answer.requestId);
      this.note(this.failures, `${seconds(answer.at)} ${answer.user ?? 'anonymous'}: status ${answer.status}${answer.error === undefined ? '' : ` (${answer.error})`}`);
      return;
    }
    const { identity, externalId } = body;
    if (identity === null) return;
    if (answer.user === undefined) return this.violation(`${seconds(answer.at)} anonymous request answered with identity ${String(identity)}`);
    if (externalId !== answer.user || typeof identity !== 'string') {
      return this.violation(`${seconds(answer.at)} ${answer.user} answered with identity ${String(identity)} of user ${String(externalId)}`);
    }
    this.claim(answer.user, identity, `${seconds(answer.at)} answer`);
  }

  /** The emulator's calls since the last drain: identity calls are counted, LLM calls matched to their request's user. */
  orq(calls: readonly EmulatorCall[]): void {
    for (const call of calls) {
      if (IDENTITY_OPERATIONS.has(call.operation)) this.identityCall(call);
      else if (LLM_OPERATIONS.has(call.operation)) this.llmCall(call);
    }
  }

  /** Every identity id handed to a user must be, in orq's own records, that user's. */
  audit(identities: readonly WireIdentity[]): void {
    const externalIdOf = new Map(identities.map((identity) => [identity._id, identity.external_id]));
    for (const [user, id] of this.idOfUser) {
      const owner = externalIdOf.get(id);
      if (owner !== user) this.violation(`audit: ${user} was given ${id}, which orq has as ${owner === undefined ? 'no identity' : `user ${owner}`}`);
    }
  }

  /** LLM requests answered 200 whose call orq never saw (after the last drain). */
  get llmCallsMissing(): number {
    return this.pendingLlm.size;
  }

  get registeredUsers(): number {
    return this.registered.size;
  }

  p99Ms(): number {
    return percentile(this.latencies, 99);
  }

  /** Distinct users seen in each hour-long slice of the run, times the slice's length in hours. */
  activeUserHours(runMs: number): number {
    let total = 0;
    for (const [hour, users] of this.usersByHour) {
      const sliceMs = Math.min(3_600_000, runMs - hour * 3_600_000);
      total += users.size * (Math.max(0, sliceMs) / 3_600_000);
    }
    return total;
  }

  timeline(): Bucket[] {
    const last = Math.max(-1, ...this.buckets.keys());
    const rows: Bucket[] = [];
    let registered = 0;
    for (let index = 0; index <= last; index += 1) {
      const bucket = this.buckets.get(index);
      registered = this.registeredByBucket.get(index) ?? registered;
      const orqCalls = bucket?.orqCalls ?? 0;
      rows.push({
        startMs: index * this.bucketMs,
        requests: bucket?.requests ?? 0,
        failed: bucket?.failed ?? 0,
        p99Ms: bucket === undefined ? Number.NaN : percentile(bucket.latencies, 99),
        orqCalls,
        orqCallsPerMinute: (orqCalls * 60_000) / this.bucketMs,
        registeredUsers: registered,
      });
    }
    return rows;
  }

  private identityCall(call: EmulatorCall): void {
    this.orqCalls += 1;
    this.orqCallsByOperation[call.operation] = (this.orqCallsByOperation[call.operation] ?? 0) + 1;
    this.orqCallsByStatus[String(call.status)] = (this.orqCallsByStatus[String(call.status)] ?? 0) + 1;
    this.bucket(call.at - this.startedAt).orqCalls += 1;
    const user = userOfCall(call);
    if (user === undefined || !this.registered.has(user)) this.registrationCalls += 1;
    else this.upkeepCalls += 1;
    const known = (call.operation === 'retrieve' && call.status === 200) || (call.operation === 'create' && (call.status === 201 || call.status === 200 || call.status === 409));
    if (user !== undefined && known && !this.registered.has(user)) {
      this.registered.add(user);
      this.registeredByBucket.set(Math.max(0, Math.floor((call.at - this.startedAt) / this.bucketMs)), this.registered.size);
    }
  }

  private llmCall(call: EmulatorCall): void {
    this.llmCalls += 1;
    const requestId = call.headers['x-soak-request'];
    const at = seconds(call.at - this.startedAt);
    if (requestId === undefined || !this.pendingLlm.has(requestId)) return this.violation(`${at} LLM call of no soak request (${String(requestId)})`);
    const user = this.pendingLlm.get(requestId) as string | null;
    this.pendingLlm.delete(requestId);
    const attributed = call.identity?.externalId;
    if (user === null) {
      this.llmCallsAnonymous += 1;
      if (attributed !== undefined) this.violation(`${at} LLM call of an anonymous request attributed to ${attributed}`);
      return;
    }
    if (attributed === undefined) {
      this.llmCallsUnattributed += 1;
      this.note(this.violations, `${at} LLM call of ${user} reached orq without identity`);
      return;
    }
    if (attributed !== user) this.violation(`${at} LLM call of ${user} attributed to ${attributed}`);
  }

  /** One identity per user and one user per identity, whichever instance answered, through every fault. */
  private claim(user: string, id: string, where: string): void {
    const previous = this.idOfUser.get(user);
    if (previous !== undefined && previous !== id) return this.violation(`${where}: ${user} answered with ${id}, earlier with ${previous}`);
    const owner = this.userOfId.get(id);
    if (owner !== undefined && owner !== user) return this.violation(`${where}: ${user} answered with ${id}, which is ${owner}'s`);
    this.idOfUser.set(user, id);
    this.userOfId.set(id, user);
  }

  private violation(text: string): void {
    this.wrongUser += 1;
    this.note(this.violations, text);
  }

  private note(list: string[], text: string): void {
    if (list.length < EXAMPLES) list.push(text);
  }

  private bucket(atMs: number): { requests: number; failed: number; latencies: number[]; orqCalls: number } {
    const key = Math.max(0, Math.floor(atMs / this.bucketMs));
    let bucket = this.buckets.get(key);
    if (bucket === undefined) this.buckets.set(key, (bucket = { requests: 0, failed: 0, latencies: [], orqCalls: 0 }));
    return bucket;
  }
}

/** The user an identity call is about: the retrieve's path, the create's body; undefined for others (update by id, list). */
export function userOfCall(call: Pick<EmulatorCall, 'operation' | 'path' | 'body'>): string | undefined {
  if (call.operation === 'retrieve') {
    const segment = call.path.split('/').pop();
    if (segment === undefined) return undefined;
    try {
      return decodeURIComponent(segment);
    } catch {
      return undefined;
    }
  }
  if (call.operation === 'create') {
    const body = call.body as { external_id?: unknown } | undefined;
    return typeof body?.external_id === 'string' ? body.external_id : undefined;
  }
  return undefined;
}

function seconds(ms: number): string {
  return `t+${(ms / 1000).toFixed(1)}s`;
}
