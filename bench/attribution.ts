// Scenario: what orqIdentityFetch adds to each LLM call: in-process (base fetch a no-op) and over HTTP to the emulator.
import { orqIdentityFetch, runWithOrqUser } from '../src/index.js';
import { startOrqEmulator } from '../src/testing/index.js';
import os from 'node:os';
import { log, median, round, type ScenarioResult } from './lib.js';

const goalAddedMicros = 5;
const orqURL = 'https://api.orq.ai/v2/router/chat/completions';
const otherURL = 'https://api.openai.com/v1/chat/completions';

/** What the OpenAI SDK hands fetch: a Headers of about this size. */
function sdkLikeHeaders(): Headers {
  return new Headers({
    accept: 'application/json',
    'content-type': 'application/json',
    'user-agent': 'OpenAI/JS 6.49.0',
    'x-stainless-lang': 'js',
    'x-stainless-package-version': '6.49.0',
    'x-stainless-os': 'Linux',
    'x-stainless-arch': 'x64',
    'x-stainless-runtime': 'node',
    'x-stainless-retry-count': '0',
    authorization: 'Bearer sk-bench',
  });
}

const resolved = Promise.resolve(new Response(null));
const noopFetch = ((_input: string | URL | Request, _init?: RequestInit) => resolved) as typeof fetch;

interface Variant {
  name: string;
  call: () => unknown;
  /** Run inside a request's context, as the app's LLM calls are (entered once per loop, not per call). */
  asUser: boolean;
}

/** ns per call of each variant: rounds alternate the variants (so load on a shared machine hits all alike), median after a warm-up round. */
function nsPerCall(variants: Variant[], iterations: number, rounds: number): Array<[string, number]> {
  const samples = new Map<string, number[]>(variants.map(({ name }) => [name, []]));
  for (let r = 0; r <= rounds; r++) {
    for (const { name, call, asUser } of variants) {
      const loop = (): number => {
        const started = process.hrtime.bigint();
        for (let i = 0; i < iterations; i++) call();
        return Number(process.hrtime.bigint() - started) / iterations;
      };
      const ns = asUser ? runWithOrqUser('bench-user', loop) : loop();
      if (r > 0) samples.get(name)?.push(ns);
    }
  }
  return variants.map(({ name }) => [name, median(samples.get(name) ?? [])]);
}

function inProcess(): Array<[string, number]> {
  const iterations = Number(process.env.ATTRIBUTION_ITERATIONS ?? 200_000);
  const wrapped = orqIdentityFetch({ fetch: noopFetch });
  const body = '{"model":"m","messages":[]}';
  const init = { method: 'POST', headers: sdkLikeHeaders(), body };
  const recordInit = { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' }, body };
  return nsPerCall([
    { name: 'bare fetch (no-op)', call: () => noopFetch(orqURL, init), asUser: true },
    { name: 'wrapped, no current user', call: () => wrapped(orqURL, init), asUser: false },
    { name: 'wrapped, user, not an orq host', call: () => wrapped(otherURL, init), asUser: true },
    { name: 'wrapped, user, orq host, headers as a record', call: () => wrapped(orqURL, recordInit), asUser: true },
    { name: 'wrapped, user, orq host, SDK-like Headers (10)', call: () => wrapped(orqURL, init), asUser: true },
  ], iterations, 5);
}

/** Real calls to the emulator's router over keep-alive HTTP, alternating bare and wrapped, µs per call. */
async function overHttp(): Promise<Array<[string, number]>> {
  const emulator = await startOrqEmulator();
  try {
    const url = `${emulator.url}/v2/router/chat/completions`;
    const wrapped = orqIdentityFetch({ origins: [emulator.url] });
    const body = JSON.stringify({ model: 'm', messages: [] });
    const call = async (f: typeof fetch): Promise<void> => {
      const response = await f(url, { method: 'POST', headers: { authorization: `Bearer ${emulator.apiKey}`, 'content-type': 'application/json' }, body });
      await response.arrayBuffer();
    };
    const calls = Number(process.env.ATTRIBUTION_HTTP_CALLS ?? 300);
    const variants: Array<[string, () => Promise<void>]> = [
      ['bare fetch', () => call(fetch)],
      ['wrapped, no current user', () => call(wrapped)],
      ['wrapped, current user (header added)', () => runWithOrqUser('bench-user', () => call(wrapped))],
    ];
    const samples = new Map<string, number[]>(variants.map(([name]) => [name, []]));
    for (let r = 0; r <= 5; r++) {
      for (const [name, run] of variants) {
        const started = performance.now();
        for (let i = 0; i < calls; i++) await run();
        if (r > 0) samples.get(name)?.push(((performance.now() - started) * 1000) / calls);
      }
      emulator.resetCalls();
    }
    return variants.map(([name]) => [name, median(samples.get(name) ?? [])]);
  } finally {
    await emulator.close();
  }
}

export async function runAttribution(): Promise<ScenarioResult> {
  log('attribution: in-process');
  const local = inProcess();
  log('attribution: over HTTP');
  const http = await overHttp();
  const bare = local[0]?.[1] ?? 0;
  const worstAddedMicros = Math.max(...local.slice(1).map(([, ns]) => ns - bare)) / 1000;
  const httpBare = http[0]?.[1] ?? 0;
  return {
    name: 'attribution',
    sections: [
      {
        title: 'orqIdentityFetch, in process (base fetch a no-op)',
        notes: [
          'ns per call: what the wrapper itself costs, with nothing else in the loop. The OpenAI SDK hands fetch a Headers of ~10 entries, which is copied (never mutated).',
          `load average at the start: ${os.loadavg().map((load) => load.toFixed(1)).join(', ')} (a shared machine inflates every figure alike).`,
        ],
        headers: ['variant', 'ns/call', 'added ns'],
        rows: local.map(([name, ns]) => [name, round(ns, 0), round(ns - bare, 0)]),
      },
      {
        title: 'orqIdentityFetch over HTTP (emulator router, keep-alive, sequential calls)',
        notes: ['µs per call, median of 5 alternating rounds; the difference is within the noise of a real call.'],
        headers: ['variant', 'µs/call', 'added µs'],
        rows: http.map(([name, micros]) => [name, round(micros, 1), round(micros - httpBare, 1)]),
      },
    ],
    goals: [{ goal: `the wrapped fetch adds under ${goalAddedMicros} µs per call`, met: worstAddedMicros < goalAddedMicros, detail: `worst case +${round(worstAddedMicros, 2)} µs in process` }],
    data: { inProcess: local, http },
  };
}
