// The token endpoint (/auth/token) of the Distribution token protocol, which `docker login`,
// docker, containerd and skopeo use. GET with HTTP Basic credentials (or none, for an anonymous
// client) and the scopes wanted; POST with an OAuth2 password grant (containerd tries it first).
// The token grants each requested action the access rules allow, and nothing else; a client
// without credentials gets a token with what anonymous clients may do (possibly nothing).
import type { Context, Next } from 'koa';
import { isValidName } from '../../registry/names.js';
import { HttpError } from '../errors.js';
import { clientCertificateName } from './client-cert.js';
import { basicCredentials } from './credentials.js';
import { ANONYMOUS, type Rights } from './rights.js';
import { ADMIN, CATALOG, parseScopes, type AccessEntry, type RepositoryAction } from './scope.js';
import type { Tokens } from './tokens.js';
import type { Logins } from './login-limits.js';

export const TOKEN_PATH = '/auth/token';
const MAX_FORM_BYTES = 64 * 1024;
const REPOSITORY_ACTIONS: RepositoryAction[] = ['pull', 'push', 'delete'];

export interface TokenEndpointDeps {
  tokens: Tokens;
  /** Password checks, through the login limits. */
  logins: Logins;
  rights: Rights;
  /** auth.admins: who gets registry:admin:* (the admin API). */
  admins: ReadonlySet<string>;
  /** Users that may push but are never granted delete or the admin API (auth.users[].appendOnly). */
  appendOnly?: ReadonlySet<string>;
  /** Told of every refused login (metrics). */
  onLoginFailure?: () => void;
}

export function tokenEndpoint({ tokens, logins, rights, admins, appendOnly, onLoginFailure }: TokenEndpointDeps) {
  /**
   * The entries of `wanted` this user may have, each cut down to the allowed actions. The admin
   * scope needs the user's password (`byPassword`): a client certificate names a site's user for
   * its repositories, never an administrator (docs/tls.md).
   */
  const grant = (user: string | undefined, wanted: AccessEntry[], byPassword: boolean): AccessEntry[] => {
    const out: AccessEntry[] = [];
    for (const entry of wanted) {
      if (entry.type === CATALOG.type && entry.name === CATALOG.name) {
        out.push(CATALOG); // the listing shows only repositories the user may pull
      } else if (entry.type === ADMIN.type && entry.name === ADMIN.name) {
        if (byPassword && user !== undefined && admins.has(user) && !appendOnly?.has(user)) out.push(ADMIN);
      } else if (entry.type === 'repository' && isValidName(entry.name)) {
        const allowed = rights.actions(user, entry.name);
        if (user !== undefined && appendOnly?.has(user)) allowed.delete('delete');
        const asked = entry.actions.includes('*') ? REPOSITORY_ACTIONS : entry.actions;
        out.push({ type: 'repository', name: entry.name, actions: REPOSITORY_ACTIONS.filter((a) => asked.includes(a) && allowed.has(a)) });
      }
    }
    return out;
  };

  const checkService = (service: string | undefined) => {
    if (service !== undefined && service !== tokens.service) {
      throw new HttpError(400, 'UNSUPPORTED', 'unknown service', { service: service.slice(0, 200), expected: tokens.service });
    }
  };

  const badCredentials = (ctx: Context) => {
    onLoginFailure?.();
    ctx.set('WWW-Authenticate', `Basic realm="${tokens.service}"`);
    return new HttpError(401, 'UNAUTHORIZED', 'incorrect username or password');
  };

  return async (ctx: Context, next: Next) => {
    if (ctx.path !== TOKEN_PATH) return next();
    ctx.set('Cache-Control', 'no-store');

    if (ctx.method === 'GET') {
      checkService(queryValue(ctx, 'service'));
      const user = await basicUser(ctx, logins);
      if (user === false) throw badCredentials(ctx);
      ctx.state.user = user?.name;
      const scopes = queryValues(ctx, 'scope').flatMap(parseScopes);
      const issued = await tokens.issue(user?.name, grant(user?.name, scopes, user?.byPassword === true));
      ctx.body = { token: issued.token, access_token: issued.token, expires_in: issued.expiresInSeconds, issued_at: issued.issuedAt.toISOString() };
      return;
    }

    if (ctx.method === 'POST') {
      const form = await readForm(ctx);
      checkService(form.get('service') ?? undefined);
      const grantType = form.get('grant_type');
      if (grantType !== 'password') {
        // Refresh tokens are not issued; clients then fall back to GET with Basic credentials.
        ctx.status = 400;
        ctx.body = { error: 'unsupported_grant_type' };
        return;
      }
      const name = form.get('username') ?? '';
      ctx.state.loginName = name; // for the audit trail's login record
      if (!(await logins.check(ctx, name, form.get('password') ?? ''))) throw badCredentials(ctx);
      ctx.state.user = name;
      const scopes = parseScopes(form.get('scope') ?? '');
      const issued = await tokens.issue(name, grant(name, scopes, true));
      ctx.body = { access_token: issued.token, expires_in: issued.expiresInSeconds, issued_at: issued.issuedAt.toISOString() };
      return;
    }

    ctx.set('Allow', 'GET, POST');
    throw new HttpError(405, 'UNSUPPORTED', 'the operation is unsupported', { method: ctx.method });
  };
}

/**
 * The Basic user: a name when the credentials check, false when wrong. Without credentials, the
 * user a verified client certificate names if auth.users has it (mutual TLS), else undefined.
 */
async function basicUser(ctx: Context, logins: Logins): Promise<{ name: string; byPassword: boolean } | undefined | false> {
  const header = ctx.get('Authorization');
  if (!header) {
    const certified = clientCertificateName(ctx);
    return certified !== undefined && certified !== ANONYMOUS && logins.users.has(certified) ? { name: certified, byPassword: false } : undefined;
  }
  const basic = basicCredentials(header);
  if (!basic) return false;
  const { name, password } = basic;
  // Checked even for "anonymous" (a word in access rules, never a user; config refuses it as a
  // name): every refused login costs one password check.
  const ok = await logins.check(ctx, name, password);
  return ok && name !== ANONYMOUS ? { name, byPassword: true } : false;
}

function queryValues(ctx: Context, name: string): string[] {
  const v = ctx.query[name];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function queryValue(ctx: Context, name: string): string | undefined {
  return queryValues(ctx, name)[0];
}

async function readForm(ctx: Context): Promise<URLSearchParams> {
  if (!ctx.is('application/x-www-form-urlencoded')) {
    throw new HttpError(400, 'UNSUPPORTED', 'expected an application/x-www-form-urlencoded body');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new HttpError(413, 'SIZE_INVALID', 'form body too large', { limit: MAX_FORM_BYTES });
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
