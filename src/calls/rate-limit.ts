// What orq says about its own limit: the X-RateLimit-* headers of any answer, read into one plain shape.

/** orq's view of the workspace's window, as one answer told it. */
export interface RateLimitInfo {
  /** Calls the workspace may make per window (`X-RateLimit-Limit`). */
  readonly limit: number;
  /** Calls left in the window when orq answered (`X-RateLimit-Remaining`); undefined when not sent. */
  readonly remaining: number | undefined;
  /** When room comes back (epoch ms, from `X-RateLimit-Reset`); undefined when not sent or unreadable. */
  readonly resetAt: number | undefined;
}

/** Headers as either transport holds them: the fetch API's Headers, or a plain record (the SDK's raw values). */
export type HeaderSource = Headers | Readonly<Record<string, string | readonly string[] | undefined>>;

/** Reset values past this are epoch seconds or milliseconds; below it, seconds from now (both forms are in use). */
const epochSecondsFrom = 1_000_000_000;
const epochMillisecondsFrom = 1_000_000_000_000;
/** A reset further away than this is not believed: no plan's window is a day long. */
const longestResetMs = 86_400_000;

/**
 * The limit orq announced, or undefined when the answer carries no usable `X-RateLimit-Limit` (a proxy stripped
 * the headers, an old deployment): without the limit the other two say nothing we can act on.
 */
export function readRateLimit(headers: HeaderSource, now = Date.now()): RateLimitInfo | undefined {
  const limit = wholeNumber(header(headers, 'x-ratelimit-limit'));
  if (limit === undefined || limit < 1) return undefined;
  const remaining = wholeNumber(header(headers, 'x-ratelimit-remaining'));
  return { limit, remaining: remaining === undefined ? undefined : Math.min(remaining, limit), resetAt: resetTime(header(headers, 'x-ratelimit-reset'), now) };
}

function header(headers: HeaderSource, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name) continue;
    const first: unknown = Array.isArray(value) ? value[0] : value;
    return typeof first === 'string' ? first : undefined;
  }
  return undefined;
}

function wholeNumber(text: string | undefined): number | undefined {
  if (text === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(text)) return undefined;
  const value = Math.floor(Number(text));
  return Number.isSafeInteger(value) ? value : undefined;
}

function resetTime(text: string | undefined, now: number): number | undefined {
  if (text === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(text)) return undefined;
  const value = Number(text);
  const at =
    value >= epochMillisecondsFrom ? value
    : value >= epochSecondsFrom ? value * 1000
    : now + value * 1000;
  // Epoch seconds are floored: a reset up to a second in the past is "now", anything older is stale or wrong.
  if (at < now - 1000 || at - now > longestResetMs) return undefined;
  return Math.max(now, Math.ceil(at));
}
