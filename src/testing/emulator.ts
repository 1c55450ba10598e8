// In-memory HTTP emulator of the orq.ai identities API, so the middleware and its users can be tested offline against real SDK traffic.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Operation = 'retrieve' | 'create' | 'update' | 'list' | 'invoke' | 'chat' | 'unknown';

/**
 * 'documented' follows the published OpenAPI seeds (bare object, nulls, no
 * workspace_id on retrieve); 'sdk' follows what @orq-ai/node actually parses
 * (`{ identity }` envelope, no nulls). They disagree, so both are emulated.
 */
export type ResponseShape = 'documented' | 'sdk';

export interface OrqEmulatorOptions {
  apiKey?: string | undefined;
  shape?: ResponseShape | undefined;
  conflictStatus?: number | undefined;
  latencyMs?: number | undefined;
  workspaceId?: string | undefined;
}

export type CallStatus = number | 'hang' | 'reset';

export interface EmulatorCall {
  readonly operation: Operation;
  readonly method: string;
  /** Raw path as received, still percent-encoded, without the query string. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly headers: Readonly<Record<string, string>>;
  /** Parsed JSON body; the raw text when it is not JSON; undefined when empty. */
  readonly body: unknown;
  readonly status: CallStatus;
}

export type FaultEffect =
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> | undefined }
  | { kind: 'hang' }
  | { kind: 'reset' }
  | { kind: 'latency'; ms: number };

export type Fault = FaultEffect & {
  operation?: Operation | 'any' | undefined;
  times?: number | undefined;
};

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

export interface OrqEmulator {
  readonly url: string;
  readonly apiKey: string;
  /** Live view: it keeps growing as requests arrive. */
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
  seed(input: SeedIdentityInput): WireIdentity;
  identities(): WireIdentity[];
  setUsage(externalId: string, usage: IdentityUsage): void;
  close(): Promise<void>;
}

/** What one invoke/chat call adds to its identity's usage, so tests can predict metrics. */
export const EMULATED_CALL_USAGE = { promptTokens: 12, completionTokens: 8, cost: 0.001 } as const;

export const DEFAULT_EMULATOR_API_KEY = 'orq-emulator-key';
export const DEFAULT_EMULATOR_WORKSPACE_ID = '550e8400-e29b-41d4-a716-446655440000';

const COLLECTION_PATH = '/v2/identities';
const EXTERNAL_ID_MAX = 120;
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

// ---------------------------------------------------------------- helpers

type JsonObject = Record<string, unknown>;

function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function ulidLike(nowMs: number = Date.now()): string {
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

interface ProfilePatch {
  display_name?: string | null;
  email?: string | null;
  avatar_url?: string | null;
  tags?: string[];
  metadata?: JsonObject;
}

interface CreateInput extends ProfilePatch {
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

function checkExternalId(value: unknown): string | undefined {
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
function pickProfile(source: JsonObject): ProfilePatch {
  const patch: ProfilePatch = {};
  for (const [field, check] of PROFILE_CHECKS) {
    if (field in source && check(source[field]) === undefined) {
      Object.assign(patch, { [field]: structuredClone(source[field]) });
    }
  }
  return patch;
}

function validatePatch(body: unknown): Validation<ProfilePatch> {
  if (!isPlainObject(body)) return { ok: false, error: 'Request body must be a JSON object' };
  const error = firstProfileError(body);
  return error === undefined ? { ok: true, value: pickProfile(body) } : { ok: false, error };
}

function validateCreate(body: unknown): Validation<CreateInput> {
  const patch = validatePatch(body);
  if (!patch.ok) return patch;
  const externalId = isPlainObject(body) ? body.external_id : undefined;
  const error = checkExternalId(externalId);
  if (error !== undefined) return { ok: false, error };
  return { ok: true, value: { ...patch.value, external_id: String(externalId) } };
}

// ---------------------------------------------------------------- store

const ZERO_USAGE: IdentityUsage = { totalCost: 0, totalTokens: 0, totalRequests: 0, errorRate: 0 };

class IdentityStore {
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

// ---------------------------------------------------------------- faults

interface PendingFault {
  readonly fault: Fault;
  remaining: number;
}

class FaultQueue {
  private pending: PendingFault[] = [];

  add(fault: Fault): void {
    this.pending.push({ fault, remaining: fault.times ?? Infinity });
  }

  clear(): void {
    this.pending = [];
  }

  take(operation: Operation): Fault | undefined {
    const entry = this.pending.find((candidate) => FaultQueue.matches(candidate.fault, operation));
    if (entry === undefined) return undefined;
    entry.remaining -= 1;
    this.pending = this.pending.filter((candidate) => candidate.remaining > 0);
    return entry.fault;
  }

  private static matches(fault: Fault, operation: Operation): boolean {
    const target = fault.operation ?? 'any';
    return target === 'any' || target === operation;
  }
}

// ---------------------------------------------------------------- routing

interface Route {
  operation: Operation;
  rawId?: string;
}

function identitySegment(path: string): string | undefined {
  const prefix = `${COLLECTION_PATH}/`;
  if (!path.startsWith(prefix)) return undefined;
  const rest = path.slice(prefix.length);
  return rest.length > 0 && !rest.includes('/') ? rest : undefined;
}

function classifyRoute(method: string, path: string): Route {
  if (path === COLLECTION_PATH || path === `${COLLECTION_PATH}/`) {
    if (method === 'GET') return { operation: 'list' };
    if (method === 'POST') return { operation: 'create' };
    return { operation: 'unknown' };
  }
  const rawId = identitySegment(path);
  if (rawId !== undefined && method === 'GET') return { operation: 'retrieve', rawId };
  if (rawId !== undefined && method === 'PATCH') return { operation: 'update', rawId };
  if (method === 'POST' && path === '/v2/deployments/invoke') return { operation: 'invoke' };
  if (method === 'POST' && path === '/v2/router/chat/completions') return { operation: 'chat' };
  return { operation: 'unknown' };
}

// ---------------------------------------------------------------- requests & replies

interface ParsedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
  /** Set when a non-empty body is not JSON, so handlers can reject it. */
  bodyInvalid: boolean;
}

type Reply =
  | { kind: 'json'; status: number; body: unknown; headers?: Record<string, string> | undefined }
  | { kind: 'hang' }
  | { kind: 'reset' };

function json(status: number, body: unknown, headers?: Record<string, string>): Reply {
  return { kind: 'json', status, body, headers };
}

const NOT_FOUND = json(404, { error: 'Not found' });
const IDENTITY_NOT_FOUND = json(404, { error: 'Identity not found' });
const INVALID_JSON = json(400, { error: 'Request body is not valid JSON' });

function flattenHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

function parseBody(text: string): { body: unknown; bodyInvalid: boolean } {
  if (text.length === 0) return { body: undefined, bodyInvalid: false };
  try {
    return { body: JSON.parse(text) as unknown, bodyInvalid: false };
  } catch {
    return { body: text, bodyInvalid: true };
  }
}

async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

async function parseRequest(req: IncomingMessage): Promise<ParsedRequest> {
  const url = req.url ?? '/';
  const queryStart = url.indexOf('?');
  const path = queryStart === -1 ? url : url.slice(0, queryStart);
  const search = queryStart === -1 ? '' : url.slice(queryStart + 1);
  return {
    method: req.method ?? 'GET',
    path,
    query: Object.fromEntries(new URLSearchParams(search)),
    headers: flattenHeaders(req.headers),
    ...parseBody(await readText(req)),
  };
}

function faultReply(fault: Fault): Reply | undefined {
  switch (fault.kind) {
    case 'status':
      return json(fault.status, fault.body ?? { error: `Injected ${fault.status}` }, fault.headers);
    case 'hang':
    case 'reset':
      return { kind: fault.kind };
    case 'latency':
      return undefined;
  }
}

function replyStatus(reply: Reply): CallStatus {
  return reply.kind === 'json' ? reply.status : reply.kind;
}

function send(res: ServerResponse, reply: Reply): void {
  if (reply.kind === 'hang' || res.destroyed) return;
  if (reply.kind === 'reset') {
    res.socket?.destroy();
    return;
  }
  res.writeHead(reply.status, { ...reply.headers, 'content-type': 'application/json' });
  res.end(JSON.stringify(reply.body));
}

// ---------------------------------------------------------------- response shapes

function documentedIdentity(identity: WireIdentity, withWorkspace: boolean): JsonObject {
  const { workspace_id: _workspaceId, ...rest } = identity;
  return withWorkspace ? { ...identity } : rest;
}

function sdkIdentity(identity: WireIdentity): JsonObject {
  return Object.fromEntries(Object.entries(identity).filter(([, value]) => value !== null));
}

function shapeItem(shape: ResponseShape, identity: WireIdentity, withWorkspace: boolean): JsonObject {
  return shape === 'sdk' ? sdkIdentity(identity) : documentedIdentity(identity, withWorkspace);
}

function wireMetrics(usage: IdentityUsage): JsonObject {
  return {
    total_cost: usage.totalCost,
    total_tokens: usage.totalTokens,
    total_requests: usage.totalRequests,
    error_rate: usage.errorRate,
  };
}

// ---------------------------------------------------------------- gateway (invoke / chat)

/**
 * Deployments invoke carries the identity at the top level; router chat
 * completions only has it under the deprecated `orq` object (`orq.identity`,
 * or the older `orq.contact`). Both use `id` for the external id.
 */
function gatewayIdentity(body: unknown): JsonObject | undefined {
  if (!isPlainObject(body)) return undefined;
  const orq = isPlainObject(body.orq) ? body.orq : {};
  const candidate = [body.identity, orq.identity, orq.contact].find(isPlainObject);
  return candidate !== undefined && checkExternalId(candidate.id) === undefined ? candidate : undefined;
}

/** The gateway's identity uses `logo_url` and an array of metadata objects; the stored identity does not. */
function profileFromGateway(identity: JsonObject): ProfilePatch {
  const metadata = Array.isArray(identity.metadata)
    ? identity.metadata.filter(isPlainObject).reduce<JsonObject>((merged, entry) => ({ ...merged, ...entry }), {})
    : identity.metadata;
  return pickProfile({ ...identity, avatar_url: identity.logo_url, metadata });
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

function emulatedUsage(): JsonObject {
  const { promptTokens, completionTokens } = EMULATED_CALL_USAGE;
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

const EMULATED_REPLY = 'This is an emulated response.';

function invokeResponse(): JsonObject {
  return {
    id: ulidLike(),
    created: new Date().toISOString(),
    object: 'chat',
    model: 'gpt-4o-mini',
    provider: 'openai',
    is_final: true,
    telemetry: { trace_id: randomHex(16), span_id: randomHex(8) },
    choices: [{ index: 0, finish_reason: 'stop', message: { type: 'content', role: 'assistant', content: EMULATED_REPLY } }],
    usage: emulatedUsage(),
  };
}

function chatResponse(body: JsonObject): JsonObject {
  return {
    id: `chatcmpl-${ulidLike()}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: typeof body.model === 'string' ? body.model : 'emulator/model',
    choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: EMULATED_REPLY } }],
    usage: emulatedUsage(),
  };
}

// ---------------------------------------------------------------- handlers

interface HandlerContext {
  store: IdentityStore;
  shape: ResponseShape;
  conflictStatus: number;
}

function identityReply(ctx: HandlerContext, status: number, item: JsonObject): Reply {
  return json(status, ctx.shape === 'sdk' ? { identity: item } : item);
}

function handleCreate(ctx: HandlerContext, request: ParsedRequest): Reply {
  if (request.bodyInvalid) return INVALID_JSON;
  const input = validateCreate(request.body);
  if (!input.ok) return json(400, { error: input.error });
  if (ctx.store.findByExternalId(input.value.external_id) !== undefined) {
    return json(ctx.conflictStatus, { error: `Identity with external_id '${input.value.external_id}' already exists` });
  }
  return identityReply(ctx, 201, shapeItem(ctx.shape, ctx.store.create(input.value), true));
}

function decodeSegment(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

function lookup(ctx: HandlerContext, rawId: string): WireIdentity | undefined {
  const id = decodeSegment(rawId);
  return id === undefined ? undefined : ctx.store.find(id);
}

function handleRetrieve(ctx: HandlerContext, request: ParsedRequest, rawId: string): Reply {
  const identity = lookup(ctx, rawId);
  if (identity === undefined) return IDENTITY_NOT_FOUND;
  // The documented retrieve response is the only one without workspace_id.
  const item = shapeItem(ctx.shape, identity, false);
  if (request.query.include_metrics === 'true') item.metrics = wireMetrics(ctx.store.usageOf(identity.external_id));
  return identityReply(ctx, 200, item);
}

function handleUpdate(ctx: HandlerContext, request: ParsedRequest, rawId: string): Reply {
  if (request.bodyInvalid) return INVALID_JSON;
  const patch = validatePatch(request.body);
  if (!patch.ok) return json(400, { error: patch.error });
  const identity = lookup(ctx, rawId);
  if (identity === undefined) return IDENTITY_NOT_FOUND;
  return identityReply(ctx, 200, shapeItem(ctx.shape, ctx.store.update(identity, patch.value), true));
}

function handleList(ctx: HandlerContext): Reply {
  const data = ctx.store.all().map((identity) => shapeItem(ctx.shape, identity, true));
  return json(200, { object: 'list', data, has_more: false });
}

/** Upserts like the gateway: an unknown identity is created, a known one is left as is. */
function attributeCall(ctx: HandlerContext, body: unknown): void {
  const identity = gatewayIdentity(body);
  if (identity === undefined) return;
  const externalId = String(identity.id);
  if (ctx.store.findByExternalId(externalId) === undefined) {
    ctx.store.create({ ...profileFromGateway(identity), external_id: externalId });
  }
  ctx.store.addSuccessfulCall(externalId);
}

function handleGateway(ctx: HandlerContext, request: ParsedRequest, operation: 'invoke' | 'chat'): Reply {
  if (request.bodyInvalid || !isPlainObject(request.body)) return json(400, { error: 'Request body must be a JSON object' });
  // Streaming answers are SSE; the emulator only speaks JSON, so say so instead of confusing the SDK.
  if (request.body.stream === true) return json(400, { error: 'Streaming is not supported by the emulator' });
  attributeCall(ctx, request.body);
  return json(200, operation === 'invoke' ? invokeResponse() : chatResponse(request.body));
}

function dispatch(ctx: HandlerContext, route: Route, request: ParsedRequest): Reply {
  switch (route.operation) {
    case 'create':
      return handleCreate(ctx, request);
    case 'retrieve':
      return handleRetrieve(ctx, request, route.rawId ?? '');
    case 'update':
      return handleUpdate(ctx, request, route.rawId ?? '');
    case 'list':
      return handleList(ctx);
    case 'invoke':
    case 'chat':
      return handleGateway(ctx, request, route.operation);
    case 'unknown':
      return NOT_FOUND;
  }
}

// ---------------------------------------------------------------- server

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

  // Faults come first because they stand in for the network and gateway, which act before auth.
  function resolveReply(route: Route, request: ParsedRequest, fault: Fault | undefined): Reply {
    const injected = fault === undefined ? undefined : faultReply(fault);
    if (injected !== undefined) return injected;
    if (request.headers.authorization !== `Bearer ${apiKey}`) return json(401, { error: 'Unauthorized' });
    return dispatch(ctx, route, request);
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
    const request = await parseRequest(req);
    const route = classifyRoute(request.method, request.path);
    const fault = faults.take(route.operation);
    const reply = resolveReply(route, request, fault);
    const { bodyInvalid: _bodyInvalid, ...recorded } = request;
    calls.push({ ...recorded, operation: route.operation, status: replyStatus(reply) });
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
