// The identities API (/v2/identities): create, retrieve, update, list, in either response shape.
import { IDENTITY_NOT_FOUND, INVALID_JSON, json, NOT_FOUND, type Operation, type ParsedRequest, type Reply } from './http.js';
import { validateCreate, validatePatch, type IdentityStore, type IdentityUsage, type JsonObject, type WireIdentity } from './store.js';

/**
 * 'documented' follows the published OpenAPI seeds (bare object, nulls, no
 * workspace_id on retrieve); 'sdk' follows what @orq-ai/node actually parses
 * (`{ identity }` envelope, no nulls). They disagree, so both are emulated.
 */
export type ResponseShape = 'documented' | 'sdk';

export const COLLECTION_PATH = '/v2/identities';

export type IdentityOperation = Extract<Operation, 'retrieve' | 'create' | 'update' | 'list' | 'unknown'>;

export interface Route {
  operation: IdentityOperation;
  rawId?: string;
}

function identitySegment(path: string): string | undefined {
  const prefix = `${COLLECTION_PATH}/`;
  if (!path.startsWith(prefix)) return undefined;
  const rest = path.slice(prefix.length);
  return rest.length > 0 && !rest.includes('/') ? rest : undefined;
}

export function classifyIdentityRoute(method: string, path: string): Route {
  if (path === COLLECTION_PATH || path === `${COLLECTION_PATH}/`) {
    if (method === 'GET') return { operation: 'list' };
    if (method === 'POST') return { operation: 'create' };
    return { operation: 'unknown' };
  }
  const rawId = identitySegment(path);
  if (rawId !== undefined && method === 'GET') return { operation: 'retrieve', rawId };
  if (rawId !== undefined && method === 'PATCH') return { operation: 'update', rawId };
  return { operation: 'unknown' };
}

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

export interface HandlerContext {
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

export function dispatchIdentity(ctx: HandlerContext, route: Route, request: ParsedRequest): Reply {
  switch (route.operation) {
    case 'create':
      return handleCreate(ctx, request);
    case 'retrieve':
      return handleRetrieve(ctx, request, route.rawId ?? '');
    case 'update':
      return handleUpdate(ctx, request, route.rawId ?? '');
    case 'list':
      return handleList(ctx);
    case 'unknown':
      return NOT_FOUND;
  }
}
