// The emulator's HTTP plumbing: what a call is, how it is parsed and recorded, and how replies (JSON or SSE) are written.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { JsonObject } from './store.js';

export type Operation = 'retrieve' | 'create' | 'update' | 'list' | 'invoke' | 'chat' | 'responses' | 'unknown';

export type CallStatus = number | 'hang' | 'reset';

/** Where the gateway found a call's identity, in the order it prefers them. */
export type IdentitySource = 'body' | 'orq-field' | 'header';

/** Who an LLM call is attributed to, as the gateway reads it. */
export interface CallIdentity {
  /** The app's id of the user (the identity's external id). */
  readonly externalId: string;
  /** `body`: a top-level `identity`; `orq-field`: `orq.identity` (or the older `orq.contact`); `header`: `X-ORQ-IDENTITY-ID`. */
  readonly source: IdentitySource;
  /** The identity object as the body carried it (wire names, e.g. `display_name`); undefined for the header. */
  readonly sent?: Readonly<JsonObject>;
}

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
  /** When the request arrived (epoch ms): how a test checks what orq saw per time window. */
  readonly at: number;
  /**
   * LLM calls (invoke, chat, responses) only: who the gateway attributes the call to, however the identity
   * came (body `identity`, `orq.identity`, or the `X-ORQ-IDENTITY-ID` header); undefined when it had none.
   */
  readonly identity?: CallIdentity | undefined;
  /** LLM calls only: true when the call asked for a stream and was answered with server-sent events. */
  readonly streamed?: boolean | undefined;
}

export interface ParsedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
  /** Set when a non-empty body is not JSON, so handlers can reject it. */
  bodyInvalid: boolean;
}

/** One server-sent event: `event` is the SSE event name, `data` is sent as JSON (or as is when a string). */
export interface SseEvent {
  event?: string;
  data: unknown;
}

export type Reply =
  | { kind: 'json'; status: number; body: unknown; headers?: Record<string, string> | undefined }
  | { kind: 'raw'; status: number; body: string; headers?: Record<string, string> | undefined }
  | { kind: 'sse'; events: readonly SseEvent[] }
  | { kind: 'hang' }
  | { kind: 'reset' };

export function json(status: number, body: unknown, headers?: Record<string, string>): Reply {
  return { kind: 'json', status, body, headers };
}

export const NOT_FOUND = json(404, { error: 'Not found' });
export const IDENTITY_NOT_FOUND = json(404, { error: 'Identity not found' });
export const INVALID_JSON = json(400, { error: 'Request body is not valid JSON' });

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

export async function parseRequest(req: IncomingMessage): Promise<ParsedRequest> {
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

export function replyStatus(reply: Reply): CallStatus {
  if (reply.kind === 'json' || reply.kind === 'raw') return reply.status;
  return reply.kind === 'sse' ? 200 : reply.kind;
}

export function send(res: ServerResponse, reply: Reply): void {
  if (reply.kind === 'hang' || res.destroyed) return;
  if (reply.kind === 'reset') {
    res.socket?.destroy();
    return;
  }
  if (reply.kind === 'sse') return sendEvents(res, reply.events);
  if (reply.kind === 'raw') {
    res.writeHead(reply.status, reply.headers);
    res.end(reply.body);
    return;
  }
  res.writeHead(reply.status, { ...reply.headers, 'content-type': 'application/json' });
  res.end(JSON.stringify(reply.body));
}

/** Writes the events one turn of the event loop apart, so clients really receive a stream in several chunks. */
function sendEvents(res: ServerResponse, events: readonly SseEvent[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let index = 0;
  const writeNext = (): void => {
    if (res.destroyed) return;
    const event = events[index++];
    if (event === undefined) {
      res.end();
      return;
    }
    const data = typeof event.data === 'string' ? event.data : JSON.stringify(event.data);
    res.write(`${event.event === undefined ? '' : `event: ${event.event}\n`}data: ${data}\n\n`);
    setImmediate(writeNext);
  };
  writeNext();
}
