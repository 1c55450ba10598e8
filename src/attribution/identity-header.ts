// The X-ORQ-IDENTITY-ID header: which value the current user gives it, and adding it to a call's headers without overriding the caller's.
import { currentExternalId } from '../context.js';

/** orq's gateway tags a call with the identity whose external id this header names (it does not upsert). */
export const IDENTITY_HEADER = 'X-ORQ-IDENTITY-ID';
const identityHeaderLower = 'x-orq-identity-id';

// Header values are byte strings: fetch throws on characters past U+00FF, and bytes past U+007F are read
// differently by different servers. An id outside printable ASCII stays out of the header (the call goes
// out untouched); the body `identity` can still carry it.
const headerSafe = /^[\x20-\x7e]+$/;

/** The header value for the user of the request being served, or undefined: no user, or an id a header cannot carry. */
export function currentIdentityHeaderValue(): string | undefined {
  const externalId = currentExternalId();
  return externalId !== undefined && headerSafe.test(externalId) ? externalId : undefined;
}

/** The id as a header value, or undefined when a header cannot carry it. */
export function identityHeaderValue(externalId: string): string | undefined {
  return headerSafe.test(externalId) ? externalId : undefined;
}

/** Header lists as fetch, the OpenAI SDK and LangChain give them. */
export type HeaderList = Headers | ReadonlyArray<readonly [string, string]> | Readonly<Record<string, string | readonly string[] | null | undefined>>;

function isIdentityHeaderName(name: string): boolean {
  return name.length === identityHeaderLower.length && name.toLowerCase() === identityHeaderLower;
}

/** True when the caller already named an identity in these headers: theirs is never replaced. */
export function hasIdentityHeader(headers: HeaderList | undefined): boolean {
  // undefined (and a null from untyped callers) falls through every branch: for…in over it runs no iteration.
  if (headers instanceof Headers) return headers.has(identityHeaderLower);
  if (Array.isArray(headers)) {
    for (const entry of headers as ReadonlyArray<readonly [string, string]>) if (isIdentityHeaderName(entry[0])) return true;
    return false;
  }
  for (const name in headers) {
    // A null or undefined value is how the OpenAI SDK and the AI SDK let a caller remove a header: it counts as set.
    if (Object.hasOwn(headers, name) && isIdentityHeaderName(name)) return true;
  }
  return false;
}

/** A copy of `headers` (same kind) with the identity header added; the caller's object is never mutated. */
export function withIdentityHeader(headers: HeaderList | undefined, value: string): HeaderList {
  // undefined (or null) ends in the last line: spreading it adds nothing.
  if (headers instanceof Headers) {
    const copy = new Headers(headers);
    copy.set(IDENTITY_HEADER, value);
    return copy;
  }
  if (Array.isArray(headers)) return [...(headers as ReadonlyArray<readonly [string, string]>), [IDENTITY_HEADER, value]];
  return { ...(headers as Record<string, string>), [IDENTITY_HEADER]: value };
}
