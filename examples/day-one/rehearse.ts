// Rehearses day one offline: every user of the app is new to orq at once, and orq's plan limits the identity calls.
// The emulator enforces a rolling-window limit like orq's, shortened so the rehearsal takes seconds; the middleware
// is given the same window and learns the limit from the emulator's X-RateLimit-* headers.
import diagnosticsChannel from 'node:diagnostics_channel';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { orqIdentityChannels, type OrqBacklogEvent, type OrqIdentityError } from '../../src/index.js';
import { startOrqEmulator } from '../../src/testing/index.js';
import { createApp, type AskAnswer } from './app.js';

export interface RehearsalOptions {
  /** Users new to orq, each making one request in the wave and one after the backlog drained. */
  users: number;
  /** The plan's identity calls per window. */
  calls: number;
  /** orq's window is 60 s; a shorter one makes the rehearsal fast. */
  windowMs: number;
  /** Requests in flight at once from the load driver. Defaults to 20. */
  concurrency?: number | undefined;
  /** Gives up waiting for the backlog to drain after this long; a bound, so a broken rehearsal cannot hang. */
  drainTimeoutMs?: number | undefined;
}

export interface RehearsalReport {
  users: number;
  /** Users with an identity in orq at the end. */
  registered: number;
  /** From the first request to the backlog's `drained` event, in windows; users ÷ calls is the physical limit. */
  windows: number;
  /** 429s orq answered: the learned budget is there to keep this at 0. */
  rateLimited: number;
  /** Identity calls (retrieves and creates) per registered user. */
  callsPerUser: number;
  /** Requests of the wave that went on without an identity yet: their users waited in the backlog. */
  deferred: number;
  /** Requests that did not answer 200, in both passes. */
  failedRequests: number;
  /** Answers whose attribution or identity was not the request's user: must be 0. */
  wrongUser: number;
  /** Requests after the drain that still had no identity: must be 0. */
  missingAfterDrain: number;
  /** The backlog's event, undefined when no user had to wait (the wave fit in the budget). */
  drained: OrqBacklogEvent | undefined;
  /** Failures reported to onError during the rehearsal. */
  errors: string[];
}

/** Runs `work` on each item, at most `limit` at once. */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export async function rehearse(options: RehearsalOptions): Promise<RehearsalReport> {
  const { users, calls, windowMs, concurrency = 20 } = options;
  const orq = await startOrqEmulator({ rateLimit: { calls, windowMs } });
  const errors: string[] = [];
  const { app, identity } = createApp({
    apiKey: orq.apiKey,
    serverURL: orq.url,
    // Only the window: the calls per window are learned from the emulator's headers, as they would be from orq's.
    budget: { windowMs },
    onError: (error: OrqIdentityError) => errors.push(error.message),
  });
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // Subscribed before the wave, so a drain during it is not missed.
  let drained: OrqBacklogEvent | undefined;
  let onDrained: () => void = () => undefined;
  const drainedOnce = new Promise<void>((resolve) => (onDrained = resolve));
  const listener = (message: unknown): void => {
    drained = message as OrqBacklogEvent;
    onDrained();
  };
  diagnosticsChannel.subscribe(orqIdentityChannels.backlog, listener);

  const ids = Array.from({ length: users }, (_, i) => `day-one-user-${i}`);
  let failedRequests = 0;
  let wrongUser = 0;
  const ask = async (userId: string): Promise<AskAnswer | undefined> => {
    const response = await fetch(`${base}/ai/ask`, { headers: { 'x-user-id': userId } });
    if (response.status !== 200) {
      failedRequests += 1;
      return undefined;
    }
    const answer = (await response.json()) as AskAnswer;
    if (answer.attributedTo !== userId || (answer.identity !== null && answer.identity !== userId)) wrongUser += 1;
    return answer;
  };

  try {
    const started = Date.now();
    let deferred = 0;
    await eachLimited(ids, concurrency, async (userId) => {
      if ((await ask(userId))?.identity === null) deferred += 1;
    });

    if ((identity.stats().backlog?.length ?? 0) > 0 || drained === undefined) {
      const bound = options.drainTimeoutMs ?? (users / calls + 10) * windowMs * 4;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, bound)));
      // Nothing to wait for when no user was deferred and no lookup is left.
      const settled = deferred === 0 && identity.stats().lookups.inFlight === 0;
      if (!settled) await Promise.race([drainedOnce, timedOut]);
      clearTimeout(timer);
    }
    const windows = (Date.now() - started) / windowMs;

    let missingAfterDrain = 0;
    await eachLimited(ids, concurrency, async (userId) => {
      const answer = await ask(userId);
      if (answer !== undefined && answer.identity === null) missingAfterDrain += 1;
    });

    const identityCalls = orq.calls.filter((call) => call.operation === 'retrieve' || call.operation === 'create');
    const registered = orq.identities().length;
    return {
      users,
      registered,
      windows: Math.round(windows * 10) / 10,
      rateLimited: identityCalls.filter((call) => call.status === 429).length,
      callsPerUser: Math.round((identityCalls.length / Math.max(1, registered)) * 1000) / 1000,
      deferred,
      failedRequests,
      wrongUser,
      missingAfterDrain,
      drained,
      errors,
    };
  } finally {
    diagnosticsChannel.unsubscribe(orqIdentityChannels.backlog, listener);
    server.close();
    await identity.close();
    await orq.close();
  }
}

/** `npm run demo -- day-one`: 300 users at 40 calls per 2 s window (Pro's 100 per 60 s, scaled down). */
export async function main(): Promise<void> {
  const options = { users: 300, calls: 40, windowMs: 2_000 };
  console.log(`Day one: ${options.users} users new to orq, ${options.calls} identity calls per ${options.windowMs} ms window.`);
  const report = await rehearse(options);
  console.log(`- ${report.deferred} of ${report.users} first requests went on before their user was registered; every one was attributed to its user.`);
  console.log(`- ${report.registered} users registered in ${report.windows} windows (the limit allows ${options.users / options.calls}), ${report.callsPerUser} calls per user, ${report.rateLimited} 429s.`);
  console.log(`- After the backlog drained: ${report.missingAfterDrain} requests without an identity, ${report.failedRequests} failed, ${report.wrongUser} with another user's identity.`);
  if (report.errors.length > 0) console.log(`- onError: ${report.errors.length} reports, the first: ${report.errors[0]}`);
  const ok = report.registered === report.users && report.rateLimited === 0 && report.failedRequests === 0 && report.wrongUser === 0 && report.missingAfterDrain === 0;
  if (!ok) process.exitCode = 1;
}
