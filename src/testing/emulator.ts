// In-memory HTTP emulator of orq.ai (the identities API and the LLM gateway), so the middleware and its users can be tested offline against real client traffic.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { faultReply, FaultQueue, type Fault } from './faults.js';
import { RollingRateLimit, type EmulatorRateLimit } from './rate-limit.js';
import { json, parseRequest, replyStatus, send, type EmulatorCall, type Operation, type ParsedRequest, type Reply } from './http.js';
import { classifyIdentityRoute, dispatchIdentity, type HandlerContext, type ResponseShape, type Route } from './identity-routes.js';
import { classifyLlmRoute, handleLlmCall, type LlmAnswer, type LlmRoute } from './router-routes.js';
import { IdentityStore, validateCreate, type IdentityUsage, type JsonObject, type SeedIdentityInput, type WireIdentity } from './store.js';

export type { CallIdentity, CallStatus, EmulatorCall, IdentitySource, Operation } from './http.js';
export type { Fault, FaultEffect } from './faults.js';
export type { EmulatorRateLimit } from './rate-limit.js';
export type { ResponseShape } from './identity-routes.js';
export { EMULATED_CALL_USAGE, type IdentityUsage, type SeedIdentityInput, type WireIdentity } from './store.js';

export interface OrqEmulatorOptions {
  apiKey?: string | undefined;
  shape?: ResponseShape | undefined;
  conflictStatus?: number | undefined;
  latencyMs?: number | undefined;
  workspaceId?: string | undefined;
  /** Acts like a proxy that decodes `%2F` to `/` before routing, so an id containing "/" no longer reaches its identity. */
  decodeEncodedSlashes?: boolean | undefined;
  /**
   * Limits the identity endpoints like orq limits a workspace: at most `calls` per rolling `windowMs` (default
   * 60 000), then 429 with `Retry-After`; every identity answer carries `X-RateLimit-Limit`, `-Remaining` and `-Reset`.
   * Defaults to none.
   */
  rateLimit?: EmulatorRateLimit | undefined;
}

export interface OrqEmulator {
  /** The base URL of the API (`serverURL` of @orq-ai/node); OpenAI-compatible clients take `${url}/v2/router` (or `/v3/router`). */
  readonly url: string;
  readonly apiKey: string;
  /** Live view: it keeps growing as requests arrive. LLM calls carry `identity`: who the gateway attributed them to. */
  readonly calls: readonly EmulatorCall[];
  /** Requests being handled (or hanging) right now. */
  readonly inFlight: number;
  /** The most requests handled at once since start or the last resetCalls(). */
  readonly peakInFlight: number;
  count(operation?: Operation): number;
  resetCalls(): void;
  inject(fault: Fault): void;
  clearFaults(): void;
  setLatency(ms: number): void;
  /** Replaces the rate limit (`undefined`: none), e.g. to rehearse a plan change; the new window starts empty. */
  setRateLimit(limit: EmulatorRateLimit | undefined): void;
  seed(input: SeedIdentityInput): WireIdentity;
  identities(): WireIdentity[];
  setUsage(externalId: string, usage: IdentityUsage): void;
  close(): Promise<void>;
}

export const DEFAULT_EMULATOR_API_KEY = 'orq-emulator-key';
export const DEFAULT_EMULATOR_WORKSPACE_ID = '550e8400-e29b-41d4-a716-446655440000';

function assertDelay(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`latency must be a non-negative number of ms, got ${ms}`);
  return ms;
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve(`http://127.0.0.1:${port}`);
    });
  });
}

function seedToBody(input: SeedIdentityInput): JsonObject {
  const body: JsonObject = {
    external_id: input.externalId,
    display_name: input.displayName,
    email: input.email,
    avatar_url: input.avatarUrl,
    tags: input.tags,
    metadata: input.metadata,
  };
  return Object.fromEntries(Object.entries(body).filter(([, value]) => value !== undefined));
}

export async function startOrqEmulator(options: OrqEmulatorOptions = {}): Promise<OrqEmulator> {
  const apiKey = options.apiKey ?? DEFAULT_EMULATOR_API_KEY;
  const ctx: HandlerContext = {
    store: new IdentityStore(options.workspaceId ?? DEFAULT_EMULATOR_WORKSPACE_ID),
    shape: options.shape ?? 'documented',
    conflictStatus: options.conflictStatus ?? 409,
  };
  const faults = new FaultQueue();
  const calls: EmulatorCall[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let latencyMs = assertDelay(options.latencyMs ?? 0);
  let rateLimit = options.rateLimit === undefined ? undefined : new RollingRateLimit(options.rateLimit);

  // Faults come first because they stand in for the network and gateway, which act before auth.
  function answer(route: Route | LlmRoute, request: ParsedRequest, fault: Fault | undefined): LlmAnswer {
    const injected = fault === undefined ? undefined : faultReply(fault, request);
    if (injected !== undefined) return { reply: injected };
    if (request.headers.authorization !== `Bearer ${apiKey}`) return { reply: json(401, { error: 'Unauthorized' }) };
    if ('streamPath' in route) return handleLlmCall(ctx.store, route, request);
    // The limit is the workspace's: it is known only once the key is, and it covers the identity endpoints alone
    // here (orq's deployments and gateway have limits of their own).
    const verdict = rateLimit?.take();
    if (verdict === undefined) return { reply: dispatchIdentity(ctx, route, request) };
    if (!verdict.allowed) return { reply: json(429, { error: 'Too many requests' }, verdict.headers) };
    const reply = dispatchIdentity(ctx, route, request);
    return { reply: reply.kind === 'json' || reply.kind === 'raw' ? { ...reply, headers: { ...reply.headers, ...verdict.headers } } : reply };
  }

  let closing: Promise<void> | undefined;

  function sendLater(res: ServerResponse, reply: Reply, delayMs: number): void {
    if (delayMs <= 0) return send(res, reply);
    // A timer armed after close() would only keep the process alive for a dead socket.
    if (closing !== undefined) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      send(res, reply);
    }, delayMs);
    timers.add(timer);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const request = await parseRequest(req);
    if (options.decodeEncodedSlashes === true) request.path = request.path.replace(/%2F/gi, '/');
    const route = classifyLlmRoute(request.method, request.path) ?? classifyIdentityRoute(request.method, request.path);
    const fault = faults.take(route.operation);
    const { reply, identity, streamed } = answer(route, request, fault);
    const { bodyInvalid: _bodyInvalid, ...recorded } = request;
    calls.push({
      ...recorded,
      operation: route.operation,
      status: replyStatus(reply),
      at,
      ...(identity === undefined ? {} : { identity }),
      ...(streamed === undefined ? {} : { streamed }),
    });
    sendLater(res, reply, latencyMs + (fault?.kind === 'latency' ? fault.ms : 0));
  }

  // Requests being handled right now, and the most at once: how tests see that a client bounds its concurrency.
  let inFlight = 0;
  let peakInFlight = 0;
  const server = createServer((req, res) => {
    inFlight += 1;
    peakInFlight = Math.max(peakInFlight, inFlight);
    res.once('close', () => {
      inFlight -= 1;
    });
    handle(req, res).catch(() => res.destroy());
  });
  const url = await listen(server);

  function close(): Promise<void> {
    closing ??= new Promise<void>((resolve) => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.close(() => resolve());
      // Hanging and keep-alive sockets would otherwise keep close() waiting forever.
      server.closeAllConnections();
    });
    return closing;
  }

  return {
    url,
    apiKey,
    get calls(): readonly EmulatorCall[] {
      return calls;
    },
    get inFlight(): number {
      return inFlight;
    },
    get peakInFlight(): number {
      return peakInFlight;
    },
    count: (operation) => (operation === undefined ? calls.length : calls.filter((call) => call.operation === operation).length),
    resetCalls: () => {
      calls.length = 0;
      peakInFlight = inFlight;
    },
    inject: (fault) => faults.add(fault),
    clearFaults: () => faults.clear(),
    setLatency: (ms) => {
      latencyMs = assertDelay(ms);
    },
    setRateLimit: (limit) => {
      rateLimit = limit === undefined ? undefined : new RollingRateLimit(limit);
    },
    seed: (input) => {
      const validated = validateCreate(seedToBody(input));
      if (!validated.ok) throw new TypeError(`Invalid seed identity: ${validated.error}`);
      if (ctx.store.findByExternalId(input.externalId) !== undefined) {
        throw new Error(`Identity with external_id '${input.externalId}' already exists`);
      }
      return structuredClone(ctx.store.create(validated.value));
    },
    identities: () => structuredClone(ctx.store.all()),
    setUsage: (externalId, usage) => ctx.store.setUsage(externalId, usage),
    close,
  };
}
