// Where the admin API meets the application: the one middleware through which any request can
// reach an admin handler. It claims every request whose path could be read as /admin/... by
// anything (any case, percent-escapes, doubled slashes, dot segments) and runs, in this order:
// the guard (deny unless authenticated), then the admin routers, then a 404. The routers are never
// mounted anywhere else, so no spelling of a path and no method can reach a handler without
// passing the guard first: the guard does not depend on the router and the guard agreeing on
// what matches. The routers are strict and case-sensitive, so once past the guard each operation
// has exactly one spelling (the one openapi.yaml gives) and anything else is a 404.
//
// With nothing configured to open the API (no admin.token, no auth.admins) a claimed request is
// answered with a JSON error that says how to turn it on; no handler ever runs.
import type Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../errors.js';

export const ADMIN_PREFIX = '/admin';

export interface AdminMountOptions {
  /** The admin guard; undefined when nothing opens the API. */
  guard: Middleware | undefined;
  /** Every router with admin handlers. Register new ones here, never with app.use. */
  routers: Router[];
}

export function adminApi({ guard, routers }: AdminMountOptions): Middleware {
  const dispatchers = routers.map((r) => r.routes() as unknown as Middleware);
  const notFound = (ctx: Context) =>
    new HttpError(404, 'NOT_FOUND', 'no such admin endpoint', { path: ctx.path.slice(0, 300), spec: 'openapi.yaml' });

  const dispatch = async (ctx: Context, i: number): Promise<void> => {
    const router = dispatchers[i];
    if (!router) throw notFound(ctx);
    await router(ctx, (() => dispatch(ctx, i + 1)) as Next);
  };

  return async (ctx: Context, next: Next) => {
    if (!mayReachAdmin(ctx.path)) return next();
    if (!guard) {
      throw new HttpError(404, 'NOT_FOUND', 'the admin API is not enabled on this registry', {
        enable: 'set admin.token (DRREG_ADMIN_TOKEN) or name admin users in auth.admins (DRREG_AUTH_ADMINS), then restart',
        docs: 'docs/auth.md',
      });
    }
    await guard(ctx, () => dispatch(ctx, 0));
  };
}

/**
 * True when any reading of `rawPath` starts with /admin: percent-decoded (repeatedly), lower
 * case, slashes collapsed, dot segments resolved. Deliberately generous: a path claimed here that
 * no route serves costs an authenticated caller a 404; one missed could not reach a handler anyway
 * (the routers are only ever called from adminApi), but would be answered elsewhere.
 */
export function mayReachAdmin(rawPath: string): boolean {
  let path = rawPath;
  for (let i = 0; i < 4; i++) {
    const decoded = safeDecode(path);
    if (decoded === path) break;
    path = decoded;
  }
  const segments: string[] = [];
  for (const segment of path.toLowerCase().replace(/\\/g, '/').split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  return segments[0]?.startsWith(ADMIN_PREFIX.slice(1)) === true;
}

function safeDecode(text: string): string {
  // Decode escape by escape: one malformed escape must not stop the others being read.
  return text.replace(/%[0-9a-f]{2}/gi, (e) => String.fromCharCode(parseInt(e.slice(1), 16)));
}
