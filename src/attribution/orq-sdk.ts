// Attribution for @orq-ai/node: the same client, whose LLM calls carry the current user (header, and optionally the body identity).
import { currentExternalId, currentOrqUser, type OrqRequestUser } from '../context.js';
import { OptionChecker } from '../options.js';
import { hasIdentityHeader, IDENTITY_HEADER, identityHeaderValue, withIdentityHeader, type HeaderList } from './identity-header.js';

// Nothing here imports a value from @orq-ai/node: the package must load without the SDK, and the client
// (or its HTTPClient) is always the app's own.

export interface WithOrqIdentityOptions {
  /**
   * Also put the user into the call's body `identity` where the SDK has a typed field for it (see docs/attribution.md),
   * so the gateway creates or updates the identity from the call (display name, email, tags). Without it the
   * header only tags the call. Defaults to `false`.
   */
  upsert?: boolean;
}

interface MethodSpec {
  readonly kind: 'method';
  /** Where the SDK takes a body identity for this call, or undefined when it has no typed field. */
  readonly bodyPath: readonly string[] | undefined;
  /** Which argument is the request body, and which the per-call options (RequestOptions). */
  readonly bodyArg: number;
  readonly optionsArg: number;
}
interface NamespaceSpec {
  readonly [name: string]: MethodSpec | NamespaceSpec;
}

/** A call `(request, options)`. */
function method(...bodyPath: string[]): MethodSpec {
  return { kind: 'method', bodyPath: bodyPath.length === 0 ? undefined : bodyPath, bodyArg: 0, optionsArg: 1 };
}

/** A call whose arguments are positional, e.g. `(key, requestBody, options)`: the body identity is top-level. */
function positional(bodyArg: number, optionsArg: number): MethodSpec {
  return { kind: 'method', bodyPath: ['identity'], bodyArg, optionsArg };
}

/** The calls that reach orq's LLM gateway, as @orq-ai/node 4.15 names them; docs/attribution.md's table lists them. */
const coveredCalls: NamespaceSpec = {
  deployments: { invoke: method('identity'), stream: method('identity') },
  router: {
    // The SDK carries the router's identity only inside the deprecated `orq` field.
    chat: { completions: { create: method('orq', 'identity') } },
    completions: { create: method('orq', 'identity') },
    embeddings: { create: method() },
  },
  responses: { create: method('identity') },
  agents: {
    // invoke(key, requestBody, options), stream(requestBody, key, options), responses.create(agentResponseRequest, agentKey, options).
    invoke: positional(1, 2),
    stream: positional(0, 2),
    run: method('identity'),
    streamRun: method('identity'),
    responses: { create: positional(0, 2) },
  },
};

function isMethod(spec: MethodSpec | NamespaceSpec): spec is MethodSpec {
  return spec.kind === 'method';
}

/**
 * Wraps an @orq-ai/node client: every LLM call made through it while serving a request carries the user in
 * `X-ORQ-IDENTITY-ID` (and, with `upsert: true`, in the body identity), unless the call names an identity
 * itself. Returns the same type; everything else, return values and streams included, is the client's own.
 */
export function withOrqIdentity<T extends object>(orq: T, options: WithOrqIdentityOptions = {}): T {
  const caller = 'withOrqIdentity';
  if (orq === null || typeof orq !== 'object') {
    throw new TypeError(`${caller}: pass your @orq-ai/node client, e.g. \`withOrqIdentity(new Orq({ apiKey }))\`; received ${orq === null ? 'null' : typeof orq}.`);
  }
  new OptionChecker(caller).known(options, ['upsert']);
  if (options.upsert !== undefined && typeof options.upsert !== 'boolean') {
    throw new TypeError(`${caller}: \`upsert\` must be a boolean, received ${typeof options.upsert}; pass \`upsert: true\` to send the body identity too.`);
  }
  return wrapNamespace(orq, coveredCalls, options.upsert ?? false);
}

/**
 * A view of `real` in which covered calls are attributed. Every property is read from the real object and
 * every function is bound to it: the SDK keeps its state in private (#) fields, which only the real `this` can reach.
 */
function wrapNamespace<T extends object>(real: T, spec: NamespaceSpec, upsert: boolean): T {
  // The SDK builds each namespace once and keeps it, so what we build over it can be kept too.
  const built = new Map<PropertyKey, unknown>();
  return new Proxy(real, {
    get(target, property) {
      if (built.has(property)) return built.get(property);
      const value: unknown = Reflect.get(target, property, target);
      const entry = typeof property === 'string' && Object.hasOwn(spec, property) ? spec[property] : undefined;
      let result: unknown;
      if (typeof value === 'function') {
        const bound = (value as (...args: unknown[]) => unknown).bind(target);
        result = entry !== undefined && isMethod(entry) ? attributed(bound, entry, upsert) : bound;
      } else if (entry !== undefined && !isMethod(entry) && typeof value === 'object' && value !== null) {
        result = wrapNamespace(value, entry, upsert);
      } else {
        return value;
      }
      built.set(property, result);
      return result;
    },
  });
}

interface CallOptions {
  headers?: HeaderList;
  fetchOptions?: { headers?: HeaderList };
}

function attributed(call: (...args: unknown[]) => unknown, spec: MethodSpec, upsert: boolean): (...args: unknown[]) => unknown {
  return function attributedCall(...args: unknown[]): unknown {
    const user = currentOrqUser();
    if (user === undefined) return call(...args);
    const request = args[spec.bodyArg];
    const callOptions = args[spec.optionsArg] as CallOptions | undefined;
    // The SDK reads `headers`, else the deprecated `fetchOptions.headers`: whichever the caller used is the one to extend.
    const headers = callOptions?.headers ?? callOptions?.fetchOptions?.headers;
    // An identity the caller named (body or header) is their choice: the call goes out as they wrote it.
    if (hasIdentityHeader(headers) || (spec.bodyPath !== undefined && readPath(request, spec.bodyPath) !== undefined)) {
      return call(...args);
    }
    const next = [...args];
    if (upsert && spec.bodyPath !== undefined) next[spec.bodyArg] = withPath(request, spec.bodyPath, publicIdentityOf(user));
    const value = identityHeaderValue(user.externalId);
    if (value !== undefined) next[spec.optionsArg] = { ...callOptions, headers: withIdentityHeader(headers, value) };
    return call(...next);
  };
}

/** The SDK's PublicIdentity (camelCase; the SDK translates it) of the user. */
function publicIdentityOf(user: OrqRequestUser): Record<string, unknown> {
  const identity: Record<string, unknown> = { id: user.externalId };
  if (user.displayName !== undefined) identity.displayName = user.displayName;
  if (user.email !== undefined) identity.email = user.email;
  if (user.tags !== undefined) identity.tags = [...user.tags];
  return identity;
}

function readPath(value: unknown, path: readonly string[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** A copy of `value` with `path` set, copying each object on the way: the caller's request is never mutated. */
function withPath(value: unknown, path: readonly string[], leaf: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const [key, ...rest] = path as [string, ...string[]];
  const record = value as Record<string, unknown>;
  const child = rest.length === 0 ? leaf : withPath(record[key] ?? {}, rest, leaf);
  return { ...record, [key]: child };
}

/**
 * A `beforeRequest` hook for @orq-ai/node's HTTPClient, for apps that build their client with one:
 * `httpClient.addHook('beforeRequest', orqIdentityRequestHook())`, then `new Orq({ httpClient })`.
 * Every call of that client (all methods, including ones withOrqIdentity does not list) gets the header.
 */
export function orqIdentityRequestHook(): (request: Request) => Request {
  return function orqIdentityBeforeRequest(request: Request): Request {
    const externalId = currentExternalId();
    const value = externalId === undefined ? undefined : identityHeaderValue(externalId);
    if (value === undefined || request.headers.has(IDENTITY_HEADER)) return request;
    const next = new Request(request);
    next.headers.set(IDENTITY_HEADER, value);
    return next;
  };
}
