// Who may use the admin API (/admin/v1). Either the static admin.token, or a user named in
// auth.admins: by password (HTTP Basic, so `curl -u` works) or by a token from /auth/token that
// carries the registry:admin:* scope (granted to those users only). A registry token for
// repositories never opens the admin API, even an admin's.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { RegistryError } from '../../registry/errors.js';
import { basicCredentials, bearerToken } from './credentials.js';
import { ADMIN } from './scope.js';
import type { Tokens } from './tokens.js';
import { clientAddress, type LoginLimits, type Logins } from './login-limits.js';

/** How request logs name a caller that used admin.token. */
export const STATIC_TOKEN_USER = 'admin.token';

export interface AdminGuardOptions {
  /** admin.token; empty: none. */
  staticToken: string;
  /** Wrong bearer tokens count against these, like wrong passwords (the token is a password). */
  limits: LoginLimits;
  /** With token auth on: the users of auth.admins, their password check and the token verifier. */
  accounts?: { admins: ReadonlySet<string>; logins: Logins; tokens: Tokens };
}

export function adminGuard({ staticToken, limits, accounts }: AdminGuardOptions) {
  const expected = staticToken ? digest(staticToken) : undefined;

  const admitted = async (ctx: Context): Promise<boolean> => {
    const header = ctx.get('Authorization');
    const bearer = bearerToken(header);
    if (bearer !== undefined) {
      const address = clientAddress(ctx);
      const wait = limits.waitMs(address, TOKEN_GUESSES);
      if (wait > 0) {
        ctx.set('Retry-After', String(Math.ceil(wait / 1000)));
        throw new RegistryError('TOOMANYREQUESTS', 'too many wrong admin tokens from this address; retry later', { retryAfterSeconds: Math.ceil(wait / 1000) });
      }
      // Compare digests in constant time: no early exit that would leak the token byte by byte.
      if (expected && timingSafeEqual(digest(bearer), expected)) {
        ctx.state.user = STATIC_TOKEN_USER;
        return true;
      }
      const verified = accounts ? await accounts.tokens.verify(bearer) : undefined;
      if (!verified) {
        limits.failed(address, TOKEN_GUESSES); // neither admin.token nor a token this registry signed
        return false;
      }
      const scoped = verified.access.some((e) => e.type === ADMIN.type && e.name === ADMIN.name && e.actions.includes('*'));
      const ok = scoped && verified.user !== undefined && accounts!.admins.has(verified.user);
      if (ok) ctx.state.user = verified.user;
      return ok;
    }
    if (!accounts) return false;
    const basic = basicCredentials(header);
    if (basic === undefined) return false;
    // The password is checked whoever the name is (an unknown name against a decoy hash), and
    // before asking whether it is an admin: every failure costs the same, so timing does not tell
    // which names are admins. The check also counts against the login limits.
    const passwordOk = await accounts.logins.check(ctx, basic.name, basic.password);
    const ok = passwordOk && accounts.admins.has(basic.name);
    if (ok) ctx.state.user = basic.name;
    return ok;
  };

  return async (ctx: Context, next: Next) => {
    if (!(await admitted(ctx))) {
      ctx.set('WWW-Authenticate', accounts ? 'Basic realm="dr-registry admin"' : 'Bearer realm="dr-registry admin"');
      throw new RegistryError('UNAUTHORIZED', accounts ? 'admin credentials required' : 'admin token required');
    }
    await next();
  };
}

/** The "name" wrong bearer tokens are counted under; no user can have it (names hold no NUL). */
const TOKEN_GUESSES = '\0admin-token';

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
