// The identity endpoints through the app's own @orq-ai/node client, described by shape so the published types need no SDK installed.
import { OrqApiError, type OrqOperation } from '../errors/orq-api-error.js';
import { identityFromWire, parseJson, readStatus, redactedCopy, redactorFor, toApiError, type IdentityApi, type Redact } from '../orq-client.js';
import type { OrqIdentity, OrqUser, ProfileField } from '../types.js';
import { observeSdkRateLimits } from './sdk-rate-limits.js';

/** The per-call options we pass to the SDK: our own deadline, and no SDK retries (we own retries). */
export interface OrqSdkCallOptions {
  timeoutMs?: number;
  retries?: { strategy: 'none' };
}

/**
 * The part of @orq-ai/node's `Orq` client the package uses: its three identity calls. Any `new Orq(...)`
 * from @orq-ai/node 4.x fits; the SDK stays an optional peer because nothing here imports it.
 */
export interface OrqClient {
  readonly identities: {
    retrieve(request: { id: string; includeMetrics?: boolean }, options?: OrqSdkCallOptions): Promise<unknown>;
    create(request: OrqUser, options?: OrqSdkCallOptions): Promise<unknown>;
    update(request: { id: string; updateIdentityRequest: Pick<OrqUser, ProfileField> }, options?: OrqSdkCallOptions): Promise<unknown>;
  };
}

// The SDK retries on its own only when told to; we own retries (inside our deadlines), so say so explicitly.
const noRetries = { strategy: 'none' } as const;

export function createIdentityApi(client: OrqClient): IdentityApi {
  const redact = redactorFor(readApiKey(client));
  const identityFromRejected = (error: unknown, operation: OrqOperation, externalId: string): OrqIdentity =>
    readRejected(error, operation, externalId, redact);
  return {
    observeRateLimits: (listener) => observeSdkRateLimits(client, listener),
    async retrieve(externalId, { timeoutMs, includeMetrics }) {
      try {
        const answer = await client.identities.retrieve(
          includeMetrics === true ? { id: externalId, includeMetrics: true } : { id: externalId },
          { timeoutMs, retries: noRetries },
        );
        return identityFrom(answer, 'retrieve', externalId);
      } catch (error) {
        if (readStatus(error) === 404) return undefined;
        return identityFromRejected(error, 'retrieve', externalId);
      }
    },
    async create(user, { timeoutMs }) {
      try {
        const answer = await client.identities.create(user, { timeoutMs, retries: noRetries });
        return identityFrom(answer, 'create', user.externalId);
      } catch (error) {
        return identityFromRejected(error, 'create', user.externalId);
      }
    },
    async update({ id, externalId }, changes, { timeoutMs }) {
      try {
        const answer = await client.identities.update(
          { id, updateIdentityRequest: changes },
          { timeoutMs, retries: noRetries },
        );
        return identityFrom(answer, 'update', externalId);
      } catch (error) {
        return identityFromRejected(error, 'update', externalId);
      }
    },
  };
}

/** The API key a client was made with, when it is a plain string (the SDK also accepts a function). */
export function readApiKey(client: OrqClient): string | undefined {
  let key: unknown;
  try {
    key = (client as unknown as { _options: { apiKey?: unknown } })._options.apiKey;
  } catch {
    // Not the SDK's client (no `_options`), or one whose options cannot be read: there is no key to know.
  }
  return typeof key === 'string' ? key : undefined;
}

function identityFrom(answer: unknown, operation: OrqOperation, externalId: string): OrqIdentity {
  const identity = identityFromWire(answer);
  if (identity === undefined) {
    throw new OrqApiError(`orq answered the ${operation} of user ${JSON.stringify(externalId)} with something that is not an identity.`, {
      operation,
      kind: 'invalid-response',
      externalId,
    });
  }
  return identity;
}

/**
 * The SDK validates answers against its own schema (wrapped in `{ identity }`, no nulls). orq's published
 * documents show the identity bare, with nulls: the SDK rejects that as ResponseValidationError, which keeps
 * the body as text like all its HTTP errors. A 2xx without a JSON content type matches none of the SDK's
 * answers (APIError "Unexpected Status or Content-Type", body as text). Either way the body is read here.
 * Errors are read by their fields, never `instanceof`, so a second copy of the SDK in the app does not break us.
 */
function readRejected(error: unknown, operation: OrqOperation, externalId: string, redact: Redact): OrqIdentity {
  const status = readStatus(error);
  if (status !== undefined && status >= 200 && status < 300) {
    const body = (error as { body?: unknown }).body;
    const parsed = typeof body === 'string' ? parseJson(body) : undefined;
    if (parsed !== undefined) return identityFrom(parsed, operation, externalId);
    throw new OrqApiError(
      `orq answered the ${operation} of user ${JSON.stringify(externalId)} with HTTP ${status} and ${typeof body === 'string' && body.trim() !== '' ? 'a body that is not JSON' : 'an empty body'}.`,
      { operation, kind: 'invalid-response', externalId, statusCode: status, cause: redactedCopy(error, redact) },
    );
  }
  throw toApiError(error, operation, externalId, redact);
}
