// The public options, their defaults, and their checks: everything after this file works from a filled-in Config.
import { LRUCache } from 'lru-cache';
import type { OrqIdentityError } from './errors/orq-identity-error.js';
import { orqTarget, type OrqTarget } from './instances.js';
import type { IdentityApi } from './orq-client.js';
import { createFetchIdentityApi } from './transport/fetch-api.js';
import { createIdentityApi, readApiKey, type OrqClient } from './transport/orq-sdk-client.js';
import { makeSharedStore, type SharedOptions } from './store/shared-options.js';
import type { RedisStore } from './store/redis-store.js';
import type { BudgetConfig } from './calls/policy.js';
import type { BacklogLimits } from './registration/backlog.js';
import type { LookupOrderOption } from './registration/lookup-order.js';
import type { OrqIdentity } from './types.js';

/** Options of the in-process identity cache (and of the shared store's entries). */
export interface CacheOptions {
  /** Most identities kept in this process. Defaults to `10_000`. */
  max?: number | undefined;
  /**
   * How long an identity is fresh, in ms: after that it is still served at once, while one background retrieve
   * (one per fleet with `shared`) renews it. An identity deleted in orq is noticed within this. Defaults to `3_600_000` (1 hour).
   */
  freshMs?: number | undefined;
  /** How long an identity stays usable (served stale while orq cannot be reached), in ms. Defaults to `604_800_000` (7 days). */
  staleMs?: number | undefined;
  /** @deprecated Since stale-while-revalidate, read as `freshMs` (with a warning). Defaults to `undefined`. */
  ttl?: number | undefined;
  /** Most memory the cached identities may take, measured as the length of their JSON. Defaults to `50_000_000` (about 50 MB). */
  maxBytes?: number | undefined;
  /** An identity larger than this (the length of its JSON; at most `maxBytes`) is not cached and not attached; it is reported. Defaults to `1_000_000` (about 1 MB). */
  maxEntryBytes?: number | undefined;
}

/**
 * The call budget: never more calls to orq in any rolling `windowMs` than orq's X-RateLimit-Limit allows (less a
 * small reserve), learned from its answers, and never more than `calls` when you set it.
 */
export interface BudgetOptions {
  /** The most calls per window, per process (fleet-wide with `shared`), whatever orq announces; also the figure used until orq has answered. Defaults to none: the limit orq announces, starting at `20` (the smallest plan's). */
  calls?: number | undefined;
  /** The rolling window, in ms. Defaults to `60_000`. */
  windowMs?: number | undefined;
}

/** The registration backlog: users deferred for lack of budget (or by a short outage), registered in the background. */
export interface BacklogOptions {
  /** Most users waiting; past it the least recently active fall out. Defaults to `100_000`. */
  maxEntries?: number | undefined;
  /** Most memory their profiles may take in this process (the length of their JSON). Defaults to `50_000_000` (about 50 MB). */
  maxBytes?: number | undefined;
  /** A user inactive this long falls out before it is registered (its next request looks it up again). Defaults to `86_400_000` (a day). */
  maxIdleMs?: number | undefined;
}

/** Options of the framework-free core (`createIdentityResolver`); `orqIdentity` takes these too. */
export interface IdentityResolverOptions<TContext = undefined> {
  /** Your own @orq-ai/node client (`new Orq({ apiKey })`) for the identity calls; without one the package calls orq over `fetch` with `apiKey` and `serverURL` and never loads @orq-ai/node. Defaults to `undefined`. */
  client?: OrqClient | undefined;
  /** orq API key, used when no `client` is given. Defaults to `process.env.ORQ_API_KEY`. */
  apiKey?: string | undefined;
  /** orq API base URL, used when no `client` is given. Defaults to `process.env.ORQ_SERVER_URL`, else `https://api.orq.ai`. */
  serverURL?: string | undefined;
  /** Cache options, or your own `LRUCache<string, OrqIdentity>` (its `ttl` is then the usable period). Defaults to `{ max: 10_000, freshMs: 3_600_000, staleMs: 604_800_000, maxBytes: 50_000_000, maxEntryBytes: 1_000_000 }`. */
  cache?: CacheOptions | LRUCache<string, OrqIdentity> | undefined;
  /** Share identities, single flight and the call budget across instances through Redis: `{ redis: client }`. Defaults to `undefined` (this process alone). */
  shared?: SharedOptions | undefined;
  /** Most calls to orq in any rolling window, per process or, with `shared`, per fleet: learned from orq's X-RateLimit-* headers, capped by `calls` when given; `false` for none. Defaults to `{ windowMs: 60_000 }` (learned, starting at 20 calls until orq's first answer). */
  budget?: BudgetOptions | false | undefined;
  /** Queue users whose lookup found no room in the budget (or met a short outage) and register them in the background, most recently active first, so their next request finds the identity; fleet-wide with `shared`. `false`: such users are looked up again on a later request. Defaults to `{ maxEntries: 100_000, maxBytes: 50_000_000, maxIdleMs: 86_400_000 }`. */
  backlog?: BacklogOptions | false | undefined;
  /** Which call a lookup of a user unknown here makes first: `'adaptive'` creates first (one call per new user) after 10 lookups in a row found new users, and retrieves first again at the first conflict; `'retrieve-first'` always retrieves, then creates on a 404. Defaults to `'adaptive'`. */
  lookupOrder?: LookupOrderOption | undefined;
  /** The longest one lookup (retrieve, create, their retries and queueing) may take, also when it goes on in the background after a request stopped waiting. Defaults to `10_000`. */
  lookupTimeoutMs?: number | undefined;
  /** Most calls to orq in flight at once; more wait in a queue. Defaults to `16`. */
  maxConcurrency?: number | undefined;
  /** Most calls waiting for one of the `maxConcurrency` slots; past it a new lookup fails at once, without a call, and is reported. Defaults to `1_000`. */
  maxQueue?: number | undefined;
  /** Extra tries of a call that failed with a 5xx, a reset or a timeout, with jittered backoff, when they fit in `lookupTimeoutMs`. Defaults to `2`. */
  retries?: number | undefined;
  /** When to stop calling a failing orq. Defaults to `{ failureThreshold: 5, cooldownMs: 5_000 }`. */
  circuitBreaker?: { failureThreshold?: number | undefined; cooldownMs?: number | undefined } | undefined;
  /** How long a user whose lookup failed is not looked up again. Defaults to `5_000`. */
  failureMemoryMs?: number | undefined;
  /** Update the identity (PATCH) in the background when the profile `getUser` supplies differs from orq's. Defaults to `true`. */
  syncProfile?: boolean | undefined;
  /** Fetch the identity's 30-day usage (`include_metrics`) and refresh it at most every `refreshMs`. Defaults to `false` (`refreshMs` defaults to `60_000`). */
  metrics?: boolean | { refreshMs?: number | undefined } | undefined;
  /** Receives every failure and every skipped user, with the `context` it concerns (`undefined` for reports that concern none: the shared store failing, a fleet-wide pause). Defaults to one concise `console.warn` line per event. */
  onError?: ((error: OrqIdentityError, context: TContext | undefined) => void) | undefined;
}

/**
 * Calls per minute a budget starts from before orq has said what the workspace's plan allows: the smallest plan's
 * (Sandbox, 20/min for API calls other than deployments), so no plan sees a 429 from us before we know better.
 */
export const startingBudgetCalls = 20;

/** The filled-in, checked form of IdentityResolverOptions. */
export interface ResolverConfig<TContext> {
  /** The identity endpoints: the app's own SDK client, or our fetch transport. */
  api: IdentityApi;
  /** Which orq this talks to (the client object, or the key hashed and the server), to notice duplicate instances. */
  orqTarget: OrqTarget;
  /** The factory's name, for messages. */
  caller: string;
  cache: LRUCache<string, OrqIdentity>;
  freshMs: number;
  staleMs: number;
  store: RedisStore | undefined;
  budget: BudgetConfig | undefined;
  backlog: BacklogLimits | undefined;
  lookupOrder: LookupOrderOption;
  lookupTimeoutMs: number;
  maxConcurrency: number;
  maxQueue: number;
  retries: number;
  failureThreshold: number;
  cooldownMs: number;
  failureMemoryMs: number;
  syncProfile: boolean;
  metricsRefreshMs: number | undefined;
  onError: (error: OrqIdentityError, context: TContext | undefined) => void;
}

export const resolverOptionNames = [
  'client', 'apiKey', 'serverURL', 'cache', 'shared', 'budget', 'backlog', 'lookupOrder', 'lookupTimeoutMs', 'maxConcurrency', 'maxQueue',
  'retries', 'circuitBreaker', 'failureMemoryMs', 'syncProfile', 'metrics', 'onError',
] as const satisfies ReadonlyArray<keyof IdentityResolverOptions>;

/** Options that live inside another one: a misplaced top-level `freshMs` is pointed at `cache.freshMs`. */
export const nestedOptionNames = [
  'cache.max', 'cache.freshMs', 'cache.staleMs', 'cache.maxBytes', 'cache.maxEntryBytes', 'circuitBreaker.failureThreshold', 'circuitBreaker.cooldownMs', 'metrics.refreshMs',
  'backlog.maxEntries', 'backlog.maxBytes', 'backlog.maxIdleMs',
] as const;

// Fails to compile when an option is added to IdentityResolverOptions but not to the list above,
// which would otherwise make the new option warn as unknown.
type MissingOptionNames = Exclude<keyof IdentityResolverOptions, (typeof resolverOptionNames)[number]>;
const allOptionNamesListed: MissingOptionNames extends never ? true : MissingOptionNames = true;
void allOptionNamesListed;

export function defaultOnError(error: OrqIdentityError): void {
  // One line, no stack: this runs on live traffic and must not flood the logs.
  console.warn(`[express-orq-identity] ${error.name} (${error.code}): ${error.message}`);
}

export function resolveResolverConfig<TContext>(
  options: IdentityResolverOptions<TContext>,
  caller: string,
  knownNames: readonly string[] = resolverOptionNames,
): ResolverConfig<TContext> {
  const check = new OptionChecker(caller);
  check.known(options, knownNames);
  const client = options.client;
  if (client !== undefined && (client === null || typeof client !== 'object' || !('identities' in client))) {
    check.fail('client', client, 'pass an instance of `Orq` from @orq-ai/node');
  }
  const apiKey = options.apiKey ?? nonEmpty(process.env.ORQ_API_KEY);
  if (client === undefined && (typeof apiKey !== 'string' || apiKey.length === 0)) {
    throw new TypeError(
      `${caller}: no orq API key. Set ORQ_API_KEY, pass \`apiKey\`, or pass your own \`client: new Orq({ apiKey })\`.`,
    );
  }
  const keySource = client !== undefined ? 'the `client` you passed' : options.apiKey !== undefined ? '`apiKey`' : 'ORQ_API_KEY';
  checkApiKey(caller, client === undefined ? apiKey : readApiKey(client), keySource);
  const serverURL = options.serverURL ?? nonEmpty(process.env.ORQ_SERVER_URL);
  if (serverURL !== undefined) check.url('serverURL', serverURL);

  const breaker = options.circuitBreaker ?? {};
  // `?? {}` and `?? false` have turned null into the default already.
  if (typeof breaker !== 'object') check.fail('circuitBreaker', breaker, 'pass `{ failureThreshold, cooldownMs }`');
  check.knownInside('circuitBreaker', breaker, ['failureThreshold', 'cooldownMs']);
  const metrics = options.metrics ?? false;
  // Only a boolean or an object: a `0` or `'false'` must not quietly turn the refreshes (one call per user a minute) on.
  if (typeof metrics !== 'boolean' && typeof metrics !== 'object') check.fail('metrics', metrics, 'pass `true`, `false` or `{ refreshMs }`');
  if (typeof metrics === 'object') check.knownInside('metrics', metrics, ['refreshMs']);
  const shared: unknown = options.shared;
  if (typeof shared === 'object' && shared !== null) check.knownInside('shared', shared, ['redis', 'prefix', 'commandTimeoutMs', 'namespace']);
  const onError = neverThrowing(check.func('onError', options.onError) ?? defaultOnError);
  const lifetimes = cacheLifetimes(check, options.cache);
  const config: ResolverConfig<TContext> = {
    // Without a client the SDK is never loaded: it costs about 1 s and 75 MB of heap for two endpoints (issue 12).
    api: client === undefined ? createFetchIdentityApi({ apiKey: apiKey as string, serverURL }) : createIdentityApi(client),
    orqTarget: orqTarget(client, apiKey, serverURL),
    caller,
    cache: makeCache(check, options.cache, lifetimes.staleMs),
    ...lifetimes,
    store: makeSharedStore(check, options.shared, clientCredentials(client, apiKey, serverURL), (error) => onError(error, undefined)),
    budget: makeBudget(check, options.budget),
    backlog: makeBacklog(check, options.backlog),
    lookupOrder: check.oneOf('lookupOrder', options.lookupOrder, ['adaptive', 'retrieve-first'] as const, 'adaptive'),
    lookupTimeoutMs: check.milliseconds('lookupTimeoutMs', options.lookupTimeoutMs, 10_000),
    maxConcurrency: check.count('maxConcurrency', options.maxConcurrency, 16, 1),
    maxQueue: check.count('maxQueue', options.maxQueue, 1_000, 0),
    retries: check.count('retries', options.retries, 2, 0),
    failureThreshold: check.count('circuitBreaker.failureThreshold', breaker.failureThreshold, 5, 1),
    cooldownMs: check.milliseconds('circuitBreaker.cooldownMs', breaker.cooldownMs, 5_000),
    failureMemoryMs: check.milliseconds('failureMemoryMs', options.failureMemoryMs, 5_000, 0),
    syncProfile: check.boolean('syncProfile', options.syncProfile, true),
    metricsRefreshMs:
      metrics === false ? undefined
      : metrics === true ? 60_000
      : check.milliseconds('metrics.refreshMs', metrics.refreshMs, 60_000),
    onError,
  };
  return config;
}

/** What tells workspaces apart in the shared store: the key and URL given, or those of the client handed in. */
function clientCredentials(client: OrqClient | undefined, apiKey: unknown, serverURL: string | undefined): { apiKey: unknown; serverURL: unknown } {
  if (client === undefined) return { apiKey, serverURL };
  const own = (client as unknown as { _options?: { apiKey?: unknown; serverURL?: unknown } })._options;
  return { apiKey: own?.apiKey, serverURL: own?.serverURL ?? serverURL };
}

function cacheLifetimes(check: OptionChecker, cache: IdentityResolverOptions<unknown>['cache']): { freshMs: number; staleMs: number } {
  if (cache instanceof LRUCache) {
    // The app's own cache: its ttl is the usable period (as documented), so entries we set never outlive it.
    const staleMs = cache.ttl > 0 ? cache.ttl : 604_800_000;
    return { freshMs: Math.min(3_600_000, staleMs), staleMs };
  }
  // null, like undefined, is the default cache.
  const given = cache ?? {};
  if (typeof given !== 'object') check.fail('cache', given, 'pass `{ max, freshMs, staleMs }` or an LRUCache');
  let freshFallback = 3_600_000;
  if (given.ttl !== undefined) {
    freshFallback = check.milliseconds('cache.ttl', given.ttl, 600_000);
    process.emitWarning(
      'cache.ttl now means how long an identity is fresh: after it, the identity is still served while a background ' +
        `retrieve renews it. Rename it to \`cache: { freshMs: ${given.ttl} }\`; \`staleMs\` (default 7 days) says how long it stays usable.`,
      { code: 'ORQ_IDENTITY_CACHE_TTL_RENAMED' },
    );
  }
  const freshMs = check.milliseconds('cache.freshMs', given.freshMs, freshFallback);
  const staleMs = check.milliseconds('cache.staleMs', given.staleMs, Math.max(604_800_000, freshMs));
  if (staleMs < freshMs) check.fail('cache.staleMs', staleMs, `pass at least \`freshMs\` (${freshMs}): an identity is usable for at least as long as it is fresh`);
  return { freshMs, staleMs };
}

function makeBudget(check: OptionChecker, budget: unknown): BudgetConfig | undefined {
  if (budget === false) return undefined;
  if (budget === undefined) return { calls: startingBudgetCalls, windowMs: 60_000, maxCalls: Number.MAX_SAFE_INTEGER, learn: true };
  if (budget === null || typeof budget !== 'object') check.fail('budget', budget, 'pass `{ calls, windowMs }`, e.g. `budget: { calls: 100, windowMs: 60_000 }`, or `false` for none');
  const given = budget as Partial<BudgetOptions>;
  check.knownInside('budget', given, ['calls', 'windowMs']);
  const windowMs = check.milliseconds('budget.windowMs', given.windowMs, 60_000);
  if (given.calls === undefined) {
    // A shorter window (an emulator's, in a rehearsal) starts from the same rate: 20 calls a minute.
    return { calls: Math.max(1, Math.floor((startingBudgetCalls * windowMs) / 60_000)), windowMs, maxCalls: Number.MAX_SAFE_INTEGER, learn: true };
  }
  const calls = check.count('budget.calls', given.calls, 60, 1);
  return { calls, windowMs, maxCalls: calls, learn: true };
}

function makeBacklog(check: OptionChecker, backlog: unknown): BacklogLimits | undefined {
  if (backlog === false) return undefined;
  const given = (backlog ?? {}) as BacklogOptions;
  if (typeof given !== 'object') check.fail('backlog', backlog, 'pass `{ maxEntries, maxBytes, maxIdleMs }`, or `false` for none');
  check.knownInside('backlog', given, ['maxEntries', 'maxBytes', 'maxIdleMs']);
  return {
    maxEntries: check.count('backlog.maxEntries', given.maxEntries, 100_000, 1),
    maxBytes: check.count('backlog.maxBytes', given.maxBytes, 50_000_000, 1),
    maxIdleMs: check.milliseconds('backlog.maxIdleMs', given.maxIdleMs, 86_400_000),
  };
}

/** A throwing onError must not take a request down with it: the throw is written to stderr instead. */
function neverThrowing<TContext>(onError: (error: OrqIdentityError, context: TContext | undefined) => void) {
  return (error: OrqIdentityError, context: TContext | undefined): void => {
    try {
      onError(error, context);
    } catch (hookError) {
      console.error('[express-orq-identity] onError threw:', hookError);
    }
  };
}

function makeCache(check: OptionChecker, cache: IdentityResolverOptions<unknown>['cache'], ttl: number): LRUCache<string, OrqIdentity> {
  if (cache instanceof LRUCache) {
    // lru-cache throws on every set of a byte-bounded cache that cannot size entries: say so now, not per lookup.
    if (cache.maxSize > 0 && cache.sizeCalculation === undefined) {
      check.refuse('cache', 'an LRUCache with `maxSize` and no `sizeCalculation`', 'give it a `sizeCalculation`, or drop `maxSize`');
    }
    return cache;
  }
  // Its shape was checked by cacheLifetimes.
  const given = cache ?? {};
  check.knownInside('cache', given, ['max', 'freshMs', 'staleMs', 'ttl', 'maxBytes', 'maxEntryBytes']);
  const maxSize = check.count('cache.maxBytes', given.maxBytes, 50_000_000, 1);
  const maxEntrySize = Math.min(maxSize, check.count('cache.maxEntryBytes', given.maxEntryBytes, 1_000_000, 1));
  // The cache's own ttl is the usable period: freshness is tracked beside it, so a stale identity is still there to serve.
  return new LRUCache<string, OrqIdentity>({
    max: check.count('cache.max', given.max, 10_000, 1),
    ttl,
    // Bounded in bytes too: an entry count alone let 30 identities with 10 MB of metadata each take 300 MiB.
    // Sized once, when stored (never on the hot path); the resolver refuses what exceeds maxEntrySize.
    maxSize,
    maxEntrySize,
    sizeCalculation: identitySize,
    // lru-cache re-reads the clock (and arms a timer) every ttlResolution ms of a get-heavy hot path;
    // a tenth of the ttl, at most a second, keeps expiry precise enough and the hot path cheaper.
    ttlResolution: Math.min(1_000, Math.max(1, Math.floor(ttl / 10))),
  });
}

/**
 * A key that cannot travel in an HTTP header fails every call, and the runtime's error quotes the header,
 * key included; refused here, once, without ever printing the key.
 */
function checkApiKey(caller: string, apiKey: unknown, source: string): void {
  if (typeof apiKey !== 'string') return;
  for (const [index, char] of apiKey.split('').entries()) {
    const code = char.charCodeAt(0);
    const problem =
      code < 0x20 || code === 0x7f ? 'a control character (a newline, NUL, tab…)'
      : code > 0xff ? 'a character that an HTTP header cannot carry'
      : undefined;
    if (problem !== undefined) {
      throw new TypeError(
        `${caller}: the orq API key from ${source} contains ${problem} at position ${index} of ${apiKey.length}; ` +
          'the key is not shown. Remove it (a trailing newline from a secrets file or `echo` is the usual cause).',
      );
    }
  }
}

/** About the bytes an identity holds: the length of its JSON (orq's answer was JSON, so it always has one). */
export function identitySize(identity: OrqIdentity): number {
  try {
    return Math.max(1, JSON.stringify(identity).length);
  } catch {
    return Number.MAX_SAFE_INTEGER;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}

/** Checks one option at a time and throws a TypeError that names it and says what to pass. */
export class OptionChecker {
  constructor(private readonly caller: string) {}

  fail(name: string, received: unknown, fix: string): never {
    this.refuse(name, `received ${show(received)}`, fix);
  }

  /** Like fail, for a value that is wrong as a whole (an object of the wrong kind) rather than one to quote. */
  refuse(name: string, problem: string, fix: string): never {
    throw new TypeError(`${this.caller}: invalid option \`${name}\`, ${problem}; ${fix}.`);
  }

  known(options: object, names: readonly string[]): void {
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`${this.caller}: options must be an object, received ${show(options)}.`);
    }
    for (const name of Object.keys(options)) {
      if (names.includes(name)) continue;
      process.emitWarning(`${this.caller}: unknown option \`${name}\` is ignored${suggestion(name, names)}`, {
        code: 'ORQ_IDENTITY_UNKNOWN_OPTION',
      });
    }
  }

  /** Warns about unknown keys inside an object option (`cache: { ttlMs }`), suggesting the right key. */
  knownInside(parent: string, value: object, names: readonly string[]): void {
    for (const key of Object.keys(value)) {
      if (names.includes(key)) continue;
      const guess = closest(key, names);
      process.emitWarning(
        `${this.caller}: unknown option \`${parent}.${key}\` is ignored${guess === undefined ? '' : `; did you mean \`${parent}.${guess.name}\`?`}`,
        { code: 'ORQ_IDENTITY_UNKNOWN_OPTION' },
      );
    }
  }

  milliseconds(name: string, value: unknown, fallback: number, min = 1): number {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
      this.fail(name, value, `pass a number of milliseconds${min > 0 ? ` of at least ${min}` : ''}, e.g. \`${name.split('.').pop()}: ${fallback.toLocaleString('en-US').replace(/,/g, '_')}\``);
    }
    return value;
  }

  count(name: string, value: unknown, fallback: number, min: number): number {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      this.fail(name, value, `pass a whole number of at least ${min}, e.g. \`${name.split('.').pop()}: ${fallback}\``);
    }
    return value;
  }

  boolean(name: string, value: unknown, fallback: boolean): boolean {
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') this.fail(name, value, 'pass `true` or `false`');
    return value;
  }

  oneOf<const T extends string>(name: string, value: unknown, choices: readonly T[], fallback: T): T {
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
      this.fail(name, value, `pass one of ${choices.map((choice) => `\`'${choice}'\``).join(', ')}`);
    }
    return value as T;
  }

  func<T>(name: string, value: T | undefined): T | undefined {
    if (value !== undefined && typeof value !== 'function') this.fail(name, value, 'pass a function');
    return value;
  }

  url(name: string, value: unknown): void {
    try {
      if (typeof value !== 'string') throw new TypeError();
      new URL(value);
    } catch {
      this.fail(name, value, 'pass an absolute URL such as `https://api.orq.ai`');
    }
  }
}

function show(value: unknown): string {
  if (typeof value === 'string') return `\`'${value}'\``;
  if (typeof value === 'function') return 'a function';
  if (value === null || typeof value !== 'object') return `\`${String(value)}\``;
  return Array.isArray(value) ? 'an array' : 'an object';
}

/** Names people carry over from other caches or from before stale-while-revalidate, and where they belong now. */
const renamedOptions: Readonly<Record<string, string>> = { ttl: 'cache.freshMs', ttlMs: 'cache.freshMs', maxAge: 'cache.freshMs' };

/** "; did you mean `x`?" for a renamed name, the nearest top-level name, or the nested one whose last part is nearer (`max` → `cache.max`). */
function suggestion(name: string, names: readonly string[]): string {
  const renamed = Object.hasOwn(renamedOptions, name) ? renamedOptions[name] : undefined;
  if (renamed !== undefined) {
    const [parent, key] = renamed.split('.');
    return `; did you mean \`${renamed}\` (\`${parent}: { ${key}: … }\`)?`;
  }
  const top = closest(name, names);
  const nested = closest(name, nestedOptionNames, (path) => path.slice(path.indexOf('.') + 1));
  if (nested !== undefined && (top === undefined || nested.distance < top.distance)) {
    const [parent, key] = nested.name.split('.');
    return `; did you mean \`${nested.name}\` (\`${parent}: { ${key}: … }\`)?`;
  }
  return top === undefined ? '' : `; did you mean \`${top.name}\`?`;
}

function closest(
  name: string,
  names: readonly string[],
  comparedPart: (candidate: string) => string = (candidate) => candidate,
): { name: string; distance: number } | undefined {
  let best: { name: string; distance: number } | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of names) {
    const part = comparedPart(candidate);
    const distance = editDistance(name.toLowerCase(), part.toLowerCase());
    // Fewer edits than half the longer name: `a` is two edits from `max`, which makes it no typo of it.
    if (distance < bestDistance && distance * 2 < Math.max(name.length, part.length)) {
      best = { name: candidate, distance };
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
