// Catches the silent mistake of a new setup: orqIdentity registered before the auth layer (or beside a per-route
// passport.authenticate), so every request looks anonymous and nothing is ever attributed, with no error anywhere.
import type { IncomingHttpHeaders } from 'node:http';

const expressFix =
  'orqIdentity probably runs before your auth middleware: register it after (`app.use(auth); app.use(identity)`), ' +
  "or, with per-route authentication such as passport.authenticate(), after it on each route with one shared instance (`app.get('/x', auth, identity, handler)`).";

/** Requests that look signed in, in a row with no user found, before we say something. */
export const anonymousStreakLimit = 20;

// Cookie names that auth layers use for sessions: express-session's connect.sid, cookie-session's session,
// Clerk's __session, express-openid-connect's appSession, next-auth's session-token, and *token/*jwt/*auth ones;
// but not CSRF tokens (XSRF-TOKEN, _csrf), which anonymous visitors get too.
const sessionCookieName = /sess|sid|auth|token|jwt/i;
const csrfCookieName = /csrf|xsrf/i;

function looksSignedIn(headers: IncomingHttpHeaders): boolean {
  if (headers.authorization !== undefined) return true;
  const cookie = headers.cookie;
  if (cookie === undefined) return false;
  for (const pair of cookie.split(';')) {
    const name = pair.slice(0, pair.indexOf('=')).trim();
    if (sessionCookieName.test(name) && !csrfCookieName.test(name)) return true;
  }
  return false;
}

/**
 * Counts requests that carry an Authorization header or a session cookie while getUser finds nobody; the first
 * user found proves the setup works and ends the watch, as does the one warning.
 */
export class MisplacedMiddlewareWatch {
  /** False once a user was found or the warning given: then the middleware stops calling us. */
  active = true;
  private streak = 0;

  /** @param fix what to do about it, in the framework's words; defaults to Express's middleware order */
  constructor(
    private readonly caller: string,
    private readonly fix: string = expressFix,
  ) {}

  userFound(): void {
    this.active = false;
  }

  noUserFound(headers: IncomingHttpHeaders): void {
    if (!looksSignedIn(headers) || ++this.streak < anonymousStreakLimit) return;
    this.active = false;
    process.emitWarning(
      `${this.caller}: ${anonymousStreakLimit} requests in a row carried an Authorization header or a session cookie, ` +
        'but getUser found no user in any of them, so no identity was attached and orq was never called. ' +
        `${this.fix} ` +
        'If your auth layer leaves the user somewhere else on the request, pass `getUser`.',
      { code: 'ORQ_IDENTITY_NO_USER_FOUND' },
    );
  }
}
