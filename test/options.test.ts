// Start-up checks of every option: a wrong value is refused at creation with a message that names the option,
// shows what was received and says what to pass; values at the edge of what is allowed are taken.
import { LRUCache } from 'lru-cache';
import { afterEach, describe, expect, it } from 'vitest';
import { resourcesCreatedBy } from './async-resources.js';
import { createIdentityResolver, type IdentityResolverOptions, type OrqIdentity } from '../src/index.js';
import { captureWarnings, eventually, orqClientFor, startApp, startEmulator } from './helpers.js';
import { connectClient, describeRedis, startRedis } from './redis.js';

const sleep = (ms: number): Promise<unknown> => new Promise((resolve) => setTimeout(resolve, ms));

const made: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  await Promise.all(made.splice(0).map((resolver) => resolver.close()));
});

/** Creates a resolver (closed after the test) and returns undefined, or returns the message it was refused with. */
function refusal(options: unknown): string | undefined {
  try {
    made.push(createIdentityResolver(options as IdentityResolverOptions));
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    return (error as Error).message;
  }
}

const refused = (option: string, received: string, fix: string): string =>
  `createIdentityResolver: invalid option \`${option}\`, received ${received}; ${fix}.`;

const warnings = captureWarnings();

describe('each option is named in its refusal, with an example of what to pass', () => {
  it.each([
    [{ lookupTimeoutMs: 0 }, refused('lookupTimeoutMs', '`0`', 'pass a number of milliseconds of at least 1, e.g. `lookupTimeoutMs: 10_000`')],
    [{ maxConcurrency: 0 }, refused('maxConcurrency', '`0`', 'pass a whole number of at least 1, e.g. `maxConcurrency: 16`')],
    [{ maxQueue: -1 }, refused('maxQueue', '`-1`', 'pass a whole number of at least 0, e.g. `maxQueue: 1000`')],
    [{ retries: 1.5 }, refused('retries', '`1.5`', 'pass a whole number of at least 0, e.g. `retries: 2`')],
    [{ circuitBreaker: { failureThreshold: 0 } }, refused('circuitBreaker.failureThreshold', '`0`', 'pass a whole number of at least 1, e.g. `failureThreshold: 5`')],
    [{ circuitBreaker: { cooldownMs: 'soon' } }, refused('circuitBreaker.cooldownMs', "`'soon'`", 'pass a number of milliseconds of at least 1, e.g. `cooldownMs: 5_000`')],
    // failureMemoryMs may be 0 (no memory), so its message names no minimum.
    [{ failureMemoryMs: -1 }, refused('failureMemoryMs', '`-1`', 'pass a number of milliseconds, e.g. `failureMemoryMs: 5_000`')],
    [{ syncProfile: 'yes' }, refused('syncProfile', "`'yes'`", 'pass `true` or `false`')],
    [{ metrics: { refreshMs: Number.POSITIVE_INFINITY } }, refused('metrics.refreshMs', '`Infinity`', 'pass a number of milliseconds of at least 1, e.g. `refreshMs: 60_000`')],
    [{ budget: { calls: 10, windowMs: Number.NaN } }, refused('budget.windowMs', '`NaN`', 'pass a number of milliseconds of at least 1, e.g. `windowMs: 60_000`')],
    [{ budget: null }, refused('budget', '`null`', 'pass `{ calls, windowMs }`, e.g. `budget: { calls: 100, windowMs: 60_000 }`, or `false` for none')],
    [{ cache: { staleMs: 0 } }, refused('cache.staleMs', '`0`', 'pass a number of milliseconds of at least 1, e.g. `staleMs: 604_800_000`')],
    [{ cache: { maxBytes: 1.5 } }, refused('cache.maxBytes', '`1.5`', 'pass a whole number of at least 1, e.g. `maxBytes: 50000000`')],
    [{ cache: { maxEntryBytes: 0 } }, refused('cache.maxEntryBytes', '`0`', 'pass a whole number of at least 1, e.g. `maxEntryBytes: 1000000`')],
    [{ cache: 'big' }, refused('cache', "`'big'`", 'pass `{ max, freshMs, staleMs }` or an LRUCache')],
    [{ onError: 'console' }, refused('onError', "`'console'`", 'pass a function')],
    [{ shared: null }, refused('shared', '`null`', 'pass `{ redis: client }` with a connected node-redis or ioredis client')],
    [{ serverURL: 443 }, refused('serverURL', '`443`', 'pass an absolute URL such as `https://api.orq.ai`')],
  ])('%j', (options, message) => {
    expect(refusal({ apiKey: 'k', ...options })).toBe(message);
  });

  it.each([
    ['an array', []],
    ['an object', {}],
    ['a function', () => 1_000],
    ['`null`', null],
    ['`true`', true],
  ])('says it received %s, never printing the value itself', (received, value) => {
    expect(refusal({ apiKey: 'k', lookupTimeoutMs: value })).toBe(
      refused('lookupTimeoutMs', received, 'pass a number of milliseconds of at least 1, e.g. `lookupTimeoutMs: 10_000`'),
    );
  });

  it('options that are not an object are refused as a whole', () => {
    expect(refusal(null)).toBe('createIdentityResolver: options must be an object, received `null`.');
    expect(refusal('k')).toBe("createIdentityResolver: options must be an object, received `'k'`.");
  });
});

describe('the edges of what is allowed are taken', () => {
  it.each([
    [{ lookupTimeoutMs: 1 }],
    [{ maxConcurrency: 1 }],
    [{ maxQueue: 0 }],
    [{ retries: 0 }],
    [{ failureMemoryMs: 0 }],
    [{ circuitBreaker: { failureThreshold: 1, cooldownMs: 1 } }],
    [{ metrics: { refreshMs: 1 } }],
    [{ syncProfile: false }],
    [{ budget: false }],
    [{ budget: { calls: 1, windowMs: 1 } }],
    // Fresh for longer than the default usable period: the usable period follows.
    [{ cache: { freshMs: 8 * 24 * 3_600_000 } }],
    // Usable exactly as long as fresh: never served stale.
    [{ cache: { freshMs: 1_000, staleMs: 1_000 } }],
    [{ cache: { max: 1, maxBytes: 1, maxEntryBytes: 1 } }],
    // null, like undefined, is the default cache.
    [{ cache: null }],
  ])('%j', (options) => {
    expect(refusal({ apiKey: 'k', ...options })).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it('a plain LRUCache of the app (bounded by count, not bytes) is taken as it is', () => {
    expect(refusal({ apiKey: 'k', cache: new LRUCache<string, OrqIdentity>({ max: 10 }) })).toBeUndefined();
  });

  it("an LRUCache of the app bounded in bytes that cannot size entries is refused, saying what it lacks and what to change", () => {
    const cache = new LRUCache<string, OrqIdentity>({ max: 10, maxSize: 1_000 });
    expect(refusal({ apiKey: 'k', cache })).toBe('createIdentityResolver: invalid option `cache`, an LRUCache with `maxSize` and no `sizeCalculation`; give it a `sizeCalculation`, or drop `maxSize`.');
  });
});

describe('the client', () => {
  it.each([
    ['an object', {}],
    ['`null`', null],
    ["`'sk-live'`", 'sk-live'],
  ])('something that is not an Orq client (%s) is refused', (received, client) => {
    expect(refusal({ client })).toBe(refused('client', received, 'pass an instance of `Orq` from @orq-ai/node'));
  });
});

describe('the API key', () => {
  const savedKey = process.env.ORQ_API_KEY;
  const savedUrl = process.env.ORQ_SERVER_URL;
  afterEach(() => {
    if (savedKey === undefined) delete process.env.ORQ_API_KEY;
    else process.env.ORQ_API_KEY = savedKey;
    if (savedUrl === undefined) delete process.env.ORQ_SERVER_URL;
    else process.env.ORQ_SERVER_URL = savedUrl;
  });

  it('an empty apiKey, or an empty ORQ_API_KEY, is no key', () => {
    delete process.env.ORQ_API_KEY;
    const noKey = 'createIdentityResolver: no orq API key. Set ORQ_API_KEY, pass `apiKey`, or pass your own `client: new Orq({ apiKey })`.';
    expect(refusal({ apiKey: '' })).toBe(noKey);
    process.env.ORQ_API_KEY = '';
    expect(refusal({})).toBe(noKey);
  });

  it('is taken with spaces and Latin-1 letters, which a header carries', () => {
    expect(refusal({ apiKey: 'sk live ÿ' })).toBeUndefined();
  });

  it.each([
    ['DEL', 'sk-\u007f-key', 'a control character (a newline, NUL, tab…) at position 3 of 8'],
    ['a unit separator', 'sk-key\u001f', 'a control character (a newline, NUL, tab…) at position 6 of 7'],
    ['U+0100', '\u0100sk-key', 'a character that an HTTP header cannot carry at position 0 of 7'],
  ])('is refused with %s, saying where', (_what, apiKey, problem) => {
    expect(refusal({ apiKey })).toBe(
      `createIdentityResolver: the orq API key from \`apiKey\` contains ${problem}; the key is not shown. ` +
        'Remove it (a trailing newline from a secrets file or `echo` is the usual cause).',
    );
  });

  it('an empty ORQ_SERVER_URL is no URL (the default), while a bad one is refused', () => {
    process.env.ORQ_SERVER_URL = '';
    expect(refusal({ apiKey: 'k' })).toBeUndefined();
    process.env.ORQ_SERVER_URL = 'api.orq.ai';
    expect(refusal({ apiKey: 'k' })).toBe(refused('serverURL', "`'api.orq.ai'`", 'pass an absolute URL such as `https://api.orq.ai`'));
  });
});

describe('an unknown option name points at the nearest known one, when one is near enough', () => {
  it.each([
    // Long names allow more edits (a third of the length): four here.
    ['lookupTimeoutMillis', '; did you mean `lookupTimeoutMs`?'],
    ['maxConcurrencyLimit', '; did you mean `maxConcurrency`?'],
    ['MAXQUEUE', '; did you mean `maxQueue`?'],
    // As near to `retries` as to `metrics`: the first listed wins.
    ['retrics', '; did you mean `retries`?'],
    // One edit from `cache`, two from `cache.max`.
    ['caxe', '; did you mean `cache`?'],
    // Two edits from `shared` and from `cache.staleMs`: the top-level name wins a tie.
    ['shareMs', '; did you mean `shared`?'],
    // Three edits from `retries`, two from `metrics.refreshMs`: the nearer, nested name wins.
    ['refriesMs', '; did you mean `metrics.refreshMs` (`metrics: { refreshMs: … }`)?'],
    ['failureThresh', '; did you mean `circuitBreaker.failureThreshold` (`circuitBreaker: { failureThreshold: … }`)?'],
    // Short names are within two edits of many: a suggestion needs fewer edits than half the longer name.
    ['a', ''],
    ['ab', ''],
    ['retires', '; did you mean `retries`?'],
    // Names every object has are unknown options like any other, not renamed ones.
    ['toString', ''],
    ['constructor', ''],
    ['hasOwnProperty', ''],
  ])('%s', (name, suggestion) => {
    expect(refusal({ apiKey: 'k', [name]: 1 })).toBeUndefined();
    expect(warnings).toEqual([
      { message: `createIdentityResolver: unknown option \`${name}\` is ignored${suggestion}`, code: 'ORQ_IDENTITY_UNKNOWN_OPTION' },
    ]);
  });
});

describe('unknown keys inside object options', () => {
  it('are pointed out in shared too', () => {
    // The misspelt key is reported before shared.redis is checked.
    expect(refusal({ apiKey: 'k', shared: { redis: 'redis://x', prefx: 'app' } })).toMatch(/invalid option `shared\.redis`/);
    expect(warnings).toEqual([
      { message: 'createIdentityResolver: unknown option `shared.prefx` is ignored; did you mean `shared.prefix`?', code: 'ORQ_IDENTITY_UNKNOWN_OPTION' },
    ]);
  });

  it('every key of shared is known, and a misspelt one is pointed at', () => {
    const redis = async (): Promise<null> => null;
    expect(refusal({ apiKey: 'k', shared: { redis, prefix: 'app', commandTimeoutMs: 100, namespace: 'prod' } })).toBeUndefined();
    expect(warnings).toEqual([]);
    expect(refusal({ apiKey: 'k', shared: { redis, commandTimeout: 100, namspace: 'prod' } })).toBeUndefined();
    // (The same key twice also draws the several-instances warning.)
    const unknown = warnings.filter((warning) => warning.code === 'ORQ_IDENTITY_UNKNOWN_OPTION');
    expect(unknown.map((warning) => warning.message)).toEqual([
      expect.stringMatching(/`shared\.commandTimeout` is ignored; did you mean `shared\.commandTimeoutMs`\?$/),
      expect.stringMatching(/`shared\.namspace` is ignored; did you mean `shared\.namespace`\?$/),
    ]);
  });
});

describe('the old cache.ttl', () => {
  it('still sets the freshness, with a warning that says what it means now and what to rename it to', () => {
    expect(refusal({ apiKey: 'k', cache: { ttl: 60_000 } })).toBeUndefined();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.code).toBe('ORQ_IDENTITY_CACHE_TTL_RENAMED');
    expect(warnings[0]?.message).toMatch(/^cache\.ttl now means how long an identity is fresh/);
    expect(warnings[0]?.message).toMatch(/Rename it to `cache: \{ freshMs: 60000 \}`/);
  });
});

describe('the cache it builds', () => {
  it('does not re-read the clock, arming a timer, on every hit: at most once a second with the default lifetime', async () => {
    const emulator = await startEmulator();
    emulator.seed({ externalId: 'often' });
    const resolver = createIdentityResolver({ apiKey: emulator.apiKey, serverURL: emulator.url });
    made.push(resolver);
    await resolver.resolve('often');
    let timers = 0;
    for (let hit = 0; hit < 10; hit++) {
      await sleep(5);
      timers += resourcesCreatedBy('Timeout', () => expect(resolver.cached('often')?.externalId).toBe('often'));
    }
    expect(timers).toBeLessThanOrEqual(2);
  });

  it('never serves an identity past staleMs, even right after a request that found it', async () => {
    const { whoami, emulator } = await startApp({ middleware: { cache: { freshMs: 50, staleMs: 100 }, retries: 0 } });
    emulator.seed({ externalId: 'brief' });
    await whoami('brief').expect(200);
    expect((await whoami('brief').expect(200)).body.identity?.externalId).toBe('brief');
    emulator.inject({ kind: 'status', status: 503 });
    await sleep(300);
    expect((await whoami('brief').expect(200)).body.identity).toBeNull();
  });
});

describe('cache.maxBytes bounds the entry size too', () => {
  it('an identity over maxBytes is neither cached nor attached, even below the default maxEntryBytes', async () => {
    const { whoami, emulator, errors } = await startApp({ middleware: { cache: { maxBytes: 1_000 } } });
    emulator.seed({ externalId: 'large', metadata: { blob: 'x'.repeat(2_000) } });
    const response = await whoami('large').expect(200);
    expect(response.body.identity).toBeNull();
    expect(errors[0]?.message).toMatch(/over cache\.maxEntryBytes \(1000\)/);
  });
});

describe("the app's own LRUCache without a ttl", () => {
  it('no ttl: fresh for the default hour, so a second request costs no call', async () => {
    const cache = new LRUCache<string, OrqIdentity>({ max: 10 });
    const { whoami, emulator } = await startApp({ middleware: { cache } });
    emulator.seed({ externalId: 'lasting' });
    await whoami('lasting').expect(200);
    await sleep(20);
    await whoami('lasting').expect(200);
    await sleep(50);
    expect(emulator.count('retrieve')).toBe(1);
  });
});

describe("the app's own LRUCache with a ttl under an hour", () => {
  it('is fresh for that ttl: an entry it still hands out after it (allowStale) is refreshed', async () => {
    // allowStale returns an expired entry once: served, and due for a refresh like any stale identity.
    const cache = new LRUCache<string, OrqIdentity>({ max: 10, ttl: 100, allowStale: true });
    const { whoami, emulator } = await startApp({ middleware: { cache } });
    emulator.seed({ externalId: 'brief' });
    await whoami('brief').expect(200);
    await sleep(200);
    expect((await whoami('brief').expect(200)).body.identity?.externalId).toBe('brief');
    await eventually(() => emulator.count('retrieve') === 2, 'the refresh of an identity past the ttl');
  });
});

describeRedis('the shared store of an app that passes its own client', () => {
  const savedKey = process.env.ORQ_API_KEY;
  afterEach(() => {
    if (savedKey === undefined) delete process.env.ORQ_API_KEY;
    else process.env.ORQ_API_KEY = savedKey;
  });

  it("tells workspaces apart by the client's own key and server (no ORQ_API_KEY needed): one key on two servers shares nothing", async () => {
    delete process.env.ORQ_API_KEY;
    const redis = await connectClient('node-redis', await startRedis());
    // Both emulators take the same API key.
    const [eu, us] = await Promise.all([startEmulator(), startEmulator()]);
    eu.seed({ externalId: 'ada', displayName: 'Ada in eu' });
    us.seed({ externalId: 'ada', displayName: 'Ada in us' });
    const inEu = createIdentityResolver({ client: orqClientFor(eu), shared: { redis } });
    made.push(inEu);
    const inUs = createIdentityResolver({ client: orqClientFor(us), shared: { redis } });
    made.push(inUs);
    expect((await inEu.resolve('ada')).displayName).toBe('Ada in eu');
    expect((await inUs.resolve('ada')).displayName).toBe('Ada in us');
    expect(us.count('retrieve')).toBe(1);
  });
});
