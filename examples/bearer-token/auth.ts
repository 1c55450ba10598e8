// A small but real bearer-token auth layer (HMAC-SHA256 signed tokens, node:crypto only) that sets `req.auth`.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** Who the request is from, as the token says; what the routes and `getUser` read. */
export interface AuthClaims {
  sub: string;
  name: string;
  email: string;
}

/** What a token carries: the claims and an expiry, in seconds since the epoch (as in JWT). */
export interface TokenPayload extends AuthClaims {
  exp: number;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- Express's own augmentation point
  namespace Express {
    interface Request {
      /** The verified token's claims, set by `bearerAuth()`; undefined for anonymous requests. */
      auth?: AuthClaims;
    }
  }
}

export type VerifyResult = { ok: true; claims: AuthClaims } | { ok: false; reason: string };

// HMAC keys shorter than the hash output make brute-forcing the secret the cheapest attack.
const MIN_SECRET_LENGTH = 32;
const DEFAULT_TTL_SECONDS = 3_600;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

function checkSecret(secret: string, caller: string): void {
  if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) {
    throw new TypeError(`${caller}: the signing secret must be a string of at least ${MIN_SECRET_LENGTH} characters.`);
  }
}

function sign(payloadPart: string, secret: string): Buffer {
  return createHmac('sha256', secret).update(payloadPart).digest();
}

/** Signs `claims` into `base64url(payload).base64url(signature)`; `exp` defaults to one hour from now. */
export function signToken(claims: AuthClaims & { exp?: number }, secret: string): string {
  checkSecret(secret, 'signToken');
  const payload: TokenPayload = {
    sub: claims.sub,
    name: claims.name,
    email: claims.email,
    exp: claims.exp ?? Math.floor(Date.now() / 1000) + DEFAULT_TTL_SECONDS,
  };
  const payloadPart = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${payloadPart}.${sign(payloadPart, secret).toString('base64url')}`;
}

function parsePayload(payloadPart: string): TokenPayload | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { sub, name, email, exp } = value as Record<string, unknown>;
  if (typeof sub !== 'string' || sub === '' || typeof name !== 'string' || typeof email !== 'string') return undefined;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return undefined;
  return { sub, name, email, exp };
}

/** Checks the signature first, so nothing in an unsigned payload is ever parsed or trusted. */
export function verifyToken(token: string, secret: string, nowMs: number = Date.now()): VerifyResult {
  const parts = token.split('.');
  const [payloadPart, signaturePart] = parts;
  if (parts.length !== 2 || payloadPart === undefined || signaturePart === undefined) {
    return { ok: false, reason: 'malformed token' };
  }
  if (!BASE64URL.test(payloadPart) || !BASE64URL.test(signaturePart)) return { ok: false, reason: 'malformed token' };
  const expected = sign(payloadPart, secret);
  const given = Buffer.from(signaturePart, 'base64url');
  // timingSafeEqual throws on a length mismatch; the length of an HMAC is public anyway.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad signature' };
  const payload = parsePayload(payloadPart);
  if (payload === undefined) return { ok: false, reason: 'malformed payload' };
  if (payload.exp * 1000 <= nowMs) return { ok: false, reason: 'token expired' };
  return { ok: true, claims: { sub: payload.sub, name: payload.name, email: payload.email } };
}

function reject(res: Response, reason: string): void {
  // RFC 6750: a rejected bearer token is a 401 that says so in WWW-Authenticate.
  res
    .status(401)
    .set('WWW-Authenticate', `Bearer error="invalid_token", error_description="${reason}"`)
    .json({ error: 'invalid_token', message: reason });
}

/**
 * Verifies `Authorization: Bearer <token>` and sets `req.auth`. No header means an anonymous request,
 * which goes on; a header that does not verify is a 401, never a silent downgrade to anonymous.
 */
export function bearerAuth(secret: string): RequestHandler {
  checkSecret(secret, 'bearerAuth');
  return function bearerAuthMiddleware(req: Request, res: Response, next: NextFunction): void {
    const header = req.get('authorization');
    if (header === undefined) return next();
    const match = /^Bearer +(\S+) *$/i.exec(header);
    if (match?.[1] === undefined) return reject(res, 'expected "Authorization: Bearer <token>"');
    const result = verifyToken(match[1], secret);
    if (!result.ok) return reject(res, result.reason);
    req.auth = result.claims;
    next();
  };
}
