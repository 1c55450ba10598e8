// orq's LLM gateway: deployments invoke/stream and the OpenAI-compatible router (/v2/router, /v3/router), answering JSON or SSE and recording who each call is attributed to.
import { randomBytes } from 'node:crypto';
import { json, type CallIdentity, type ParsedRequest, type Reply, type SseEvent } from './http.js';
import {
  checkExternalId,
  EMULATED_CALL_USAGE,
  isPlainObject,
  pickProfile,
  ulidLike,
  type IdentityStore,
  type JsonObject,
  type ProfilePatch,
} from './store.js';

export type LlmOperation = 'invoke' | 'chat' | 'responses';

export interface LlmRoute {
  operation: LlmOperation;
  /** The path itself asks for a stream (deployments/stream), whatever the body says. */
  streamPath: boolean;
}

const routerPrefixes = ['/v2/router', '/v3/router'];

export function classifyLlmRoute(method: string, path: string): LlmRoute | undefined {
  if (method !== 'POST') return undefined;
  if (path === '/v2/deployments/invoke') return { operation: 'invoke', streamPath: false };
  if (path === '/v2/deployments/stream') return { operation: 'invoke', streamPath: true };
  for (const prefix of routerPrefixes) {
    if (path === `${prefix}/chat/completions`) return { operation: 'chat', streamPath: false };
    if (path === `${prefix}/responses`) return { operation: 'responses', streamPath: false };
  }
  return undefined;
}

export const IDENTITY_HEADER = 'x-orq-identity-id';

/**
 * The gateway's order: a body identity (deployments and /v3 responses take it top-level; router chat
 * completions through @orq-ai/node only under the deprecated `orq` object, `orq.identity` or the older
 * `orq.contact`) tags the call and upserts the identity; else the `X-ORQ-IDENTITY-ID` header tags it.
 */
export function callIdentity(request: ParsedRequest): CallIdentity | undefined {
  const body = isPlainObject(request.body) ? request.body : {};
  if (isUsable(body.identity)) return { externalId: body.identity.id as string, source: 'body', sent: body.identity };
  const orq = isPlainObject(body.orq) ? body.orq : {};
  const nested = [orq.identity, orq.contact].find(isUsable);
  if (nested !== undefined) return { externalId: nested.id as string, source: 'orq-field', sent: nested };
  const header = request.headers[IDENTITY_HEADER];
  if (header !== undefined && checkExternalId(header) === undefined) return { externalId: header, source: 'header' };
  return undefined;
}

function isUsable(candidate: unknown): candidate is JsonObject {
  return isPlainObject(candidate) && checkExternalId(candidate.id) === undefined;
}

/** The gateway's identity uses `logo_url` and an array of metadata objects; the stored identity does not. */
function profileFromGateway(identity: Readonly<JsonObject>): ProfilePatch {
  const metadata = Array.isArray(identity.metadata)
    ? identity.metadata.filter(isPlainObject).reduce<JsonObject>((merged, entry) => ({ ...merged, ...entry }), {})
    : identity.metadata;
  return pickProfile({ ...identity, avatar_url: identity.logo_url, metadata });
}

/** Upserts like the gateway for a body identity (an unknown one is created, a known one left as is); the header only tags. */
function attributeCall(store: IdentityStore, identity: CallIdentity | undefined): void {
  if (identity === undefined) return;
  if (identity.sent !== undefined && store.findByExternalId(identity.externalId) === undefined) {
    store.create({ ...profileFromGateway(identity.sent), external_id: identity.externalId });
  }
  store.addSuccessfulCall(identity.externalId);
}

export interface LlmAnswer {
  reply: Reply;
  identity?: CallIdentity;
  streamed?: boolean;
}

export function handleLlmCall(store: IdentityStore, route: LlmRoute, request: ParsedRequest): LlmAnswer {
  if (request.bodyInvalid || !isPlainObject(request.body)) return { reply: json(400, { error: 'Request body must be a JSON object' }) };
  const body = request.body;
  const identity = callIdentity(request);
  attributeCall(store, identity);
  const streamed = route.streamPath || body.stream === true;
  const model = typeof body.model === 'string' ? body.model : 'openai/gpt-4o-mini';
  const reply: Reply =
    route.operation === 'invoke' ? (streamed ? { kind: 'sse', events: invokeEvents() } : json(200, invokeResponse(true, EMULATED_REPLY)))
    : route.operation === 'chat' ? (streamed ? { kind: 'sse', events: chatEvents(model, body) } : json(200, chatResponse(model)))
    : streamed ? { kind: 'sse', events: responseEvents(model) } : json(200, responseObject(model, 'completed', EMULATED_REPLY));
  return { reply, ...(identity === undefined ? {} : { identity }), streamed };
}

// ---------------------------------------------------------------- answers

export const EMULATED_REPLY = 'This is an emulated response.';
/** The reply split as a stream sends it. */
const EMULATED_DELTAS = ['This is ', 'an emulated ', 'response.'];

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

function chatUsage(): JsonObject {
  const { promptTokens, completionTokens } = EMULATED_CALL_USAGE;
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

function invokeResponse(isFinal: boolean, content: string): JsonObject {
  return {
    id: ulidLike(),
    created: new Date().toISOString(),
    object: 'chat',
    model: 'gpt-4o-mini',
    provider: 'openai',
    is_final: isFinal,
    telemetry: { trace_id: randomHex(16), span_id: randomHex(8) },
    choices: [{ index: 0, finish_reason: isFinal ? 'stop' : null, message: { type: 'content', role: 'assistant', content } }],
    ...(isFinal ? { usage: chatUsage() } : {}),
  };
}

function invokeEvents(): SseEvent[] {
  return [...EMULATED_DELTAS.map((delta) => ({ data: invokeResponse(false, delta) })), { data: invokeResponse(true, '') }, { data: '[DONE]' }];
}

function chatResponse(model: string): JsonObject {
  return {
    id: `chatcmpl-${ulidLike()}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, finish_reason: 'stop', logprobs: null, message: { role: 'assistant', content: EMULATED_REPLY } }],
    usage: chatUsage(),
  };
}

/** OpenAI's chunk sequence: a role delta, content deltas, a finish, the usage chunk when asked for, then `[DONE]`. */
function chatEvents(model: string, body: JsonObject): SseEvent[] {
  const id = `chatcmpl-${ulidLike()}`;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta: JsonObject, finishReason: string | null): SseEvent => ({
    data: { id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] },
  });
  const events = [
    chunk({ role: 'assistant', content: '' }, null),
    ...EMULATED_DELTAS.map((content) => chunk({ content }, null)),
    chunk({}, 'stop'),
  ];
  const streamOptions = isPlainObject(body.stream_options) ? body.stream_options : {};
  if (streamOptions.include_usage === true) {
    events.push({ data: { id, object: 'chat.completion.chunk', created, model, choices: [], usage: chatUsage() } });
  }
  events.push({ data: '[DONE]' });
  return events;
}

function responseObject(model: string, status: 'in_progress' | 'completed', text: string): JsonObject {
  const now = Math.floor(Date.now() / 1000);
  const { promptTokens, completionTokens } = EMULATED_CALL_USAGE;
  const completed = status === 'completed';
  return {
    id: `resp_${ulidLike()}`,
    object: 'response',
    created_at: now,
    completed_at: completed ? now : null,
    status,
    background: false,
    error: null,
    incomplete_details: null,
    input: [],
    instructions: null,
    max_output_tokens: null,
    max_tool_calls: null,
    metadata: {},
    model,
    output: completed
      ? [{ type: 'message', id: `msg_${ulidLike()}`, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] }]
      : [],
    parallel_tool_calls: true,
    frequency_penalty: 0,
    presence_penalty: 0,
    previous_response_id: null,
    prompt_cache_key: null,
    prompt_cache_options: null,
    prompt_cache_retention: null,
    reasoning: null,
    safety_identifier: null,
    service_tier: 'default',
    store: false,
    temperature: 1,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_logprobs: 0,
    top_p: 1,
    truncation: 'disabled',
    usage: completed
      ? {
        input_tokens: promptTokens,
        input_tokens_details: { cached_tokens: 0, cache_creation_tokens: 0, cache_write_tokens: 0 },
        output_tokens: completionTokens,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: promptTokens + completionTokens,
      }
      : null,
    user: null,
  };
}

/** The Responses API's event sequence, trimmed to what clients need to assemble the text. */
function responseEvents(model: string): SseEvent[] {
  const itemId = `msg_${ulidLike()}`;
  let sequence = 0;
  const event = (type: string, fields: JsonObject): SseEvent => ({ event: type, data: { type, sequence_number: sequence++, ...fields } });
  return [
    event('response.created', { response: responseObject(model, 'in_progress', '') }),
    ...EMULATED_DELTAS.map((delta) => event('response.output_text.delta', { item_id: itemId, output_index: 0, content_index: 0, delta })),
    event('response.output_text.done', { item_id: itemId, output_index: 0, content_index: 0, text: EMULATED_REPLY }),
    event('response.completed', { response: responseObject(model, 'completed', EMULATED_REPLY) }),
  ];
}
