// Who is acting, for the audit trail: every request runs with its actor (user or token, client
// address, user agent, request id) in the audit context, so what the domain records names them.
// Here too what only HTTP sees: logins (the token endpoint, the admin API's Basic check) and
// requests refused with DENIED. The credentials were checked by the gate or the guard before
// anything is recorded as done; the name below is only read from the same header.
import type { Context, Next } from 'koa';
import { actingAs, type AuditActor, type AuditRecorder } from '../../audit/recorder.js';
import { mayReachAdmin } from '../admin/mount.js';
import { clientCertificateName } from '../auth/client-cert.js';
import { basicCredentials, bearerToken } from '../auth/credentials.js';
import { TOKEN_PATH } from '../auth/token-endpoint.js';

export function auditContext(audit: AuditRecorder) {
  return async (ctx: Context, next: Next) => {
    const { actor, settle } = verifiedActor(ctx, actorOf(ctx));
    try {
      await actingAs(actor, next);
    } finally {
      recordAfter(ctx, actor, audit);
      settle();
    }
  };
}

function recordAfter(ctx: Context, actor: AuditActor, audit: AuditRecorder): void {
  const basic = basicCredentials(ctx.get('Authorization'));
  if (ctx.path === TOKEN_PATH && (basic || ctx.method === 'POST') && (ctx.status === 200 || ctx.status === 401)) {
    const user = basic?.name ?? (typeof ctx.state.loginName === 'string' ? ctx.state.loginName : undefined);
    audit.record({
      action: 'login',
      outcome: ctx.status === 200 ? 'ok' : 'failed',
      actor: { ...actor, kind: 'user', ...(user !== undefined ? { user: user.slice(0, 100) } : {}) },
      detail: { api: 'token' },
    });
    return;
  }
  if (ctx.status === 401 && ctx.get('Authorization') && mayReachAdmin(ctx.path)) {
    audit.record({ action: 'login', outcome: 'failed', actor, detail: { api: 'admin', path: ctx.path.slice(0, 200) } });
    return;
  }
  if (ctx.status === 403 && ctx.method !== 'GET' && ctx.method !== 'HEAD') {
    const body = ctx.body as { errors?: Array<{ message?: string; detail?: unknown }> } | undefined;
    const error = body?.errors?.[0];
    audit.record({
      action: 'request.denied',
      outcome: 'denied',
      actor,
      detail: { method: ctx.method, path: ctx.path.slice(0, 300), ...(error?.message ? { message: error.message } : {}) },
    });
  }
}

/**
 * The actor as the gate, token endpoint or admin guard admitted it (ctx.state.user, set once the
 * credentials checked; a client certificate's name too), read when a record is made; before that,
 * or without a check, the name the credentials carry.
 *
 * The actor lives in the audit context, which Node copies into every async resource the request
 * creates, and some outlive it (a closed FileHandle keeps the promise of its close, with the
 * context, until it is collected). So the actor must not keep the request alive: settle(), called
 * when the request ends, fixes its fields and drops the reference to ctx. Before this, each
 * manifest GET kept its whole ctx, about 14 KB, and RSS grew without bound under load.
 */
function verifiedActor(ctx: Context, fromHeader: AuditActor): { actor: AuditActor; settle: () => void } {
  const certified = clientCertificateName(ctx);
  let state: Context['state'] | undefined = ctx.state;
  const user = () =>
    fromHeader.kind === 'admin-token' ? undefined : ((typeof state?.user === 'string' ? (state.user as string) : undefined) ?? fromHeader.user ?? certified);
  const kind = () => (fromHeader.kind === 'anonymous' && user() !== undefined ? 'user' : fromHeader.kind);
  const actor = { ...fromHeader };
  Object.defineProperty(actor, 'user', { enumerable: true, configurable: true, get: user });
  Object.defineProperty(actor, 'kind', { enumerable: true, configurable: true, get: kind });
  const settle = () => {
    const fixed = { user: user(), kind: kind() };
    state = undefined;
    Object.defineProperty(actor, 'user', { enumerable: fixed.user !== undefined, configurable: true, value: fixed.user });
    Object.defineProperty(actor, 'kind', { enumerable: true, configurable: true, value: fixed.kind });
  };
  return { actor, settle };
}

function actorOf(ctx: Context): AuditActor {
  const header = ctx.get('Authorization');
  const where = {
    address: ctx.request.ip,
    ...(ctx.get('User-Agent') ? { userAgent: ctx.get('User-Agent').slice(0, 200) } : {}),
    ...(typeof ctx.state.requestId === 'string' ? { requestId: ctx.state.requestId } : {}),
  };
  const bearer = bearerToken(header);
  if (bearer !== undefined) {
    const parts = bearer.split('.');
    if (parts.length !== 3) return { kind: 'admin-token', ...where };
    try {
      const sub = (JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { sub?: unknown }).sub;
      if (typeof sub === 'string' && sub !== '') return { kind: 'user', user: sub.slice(0, 100), ...where };
    } catch {
      // not a JWT: the request is refused by the gate anyway
    }
    return { kind: 'anonymous', ...where };
  }
  const basic = basicCredentials(header);
  if (basic) return { kind: 'user', user: basic.name.slice(0, 100), ...where };
  return { kind: 'anonymous', ...where };
}
