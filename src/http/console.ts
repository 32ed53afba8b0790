// The operator's console: static files (HTML, CSS, plain JavaScript modules) from the console/
// folder at the package root, served under /console/. Everything it shows comes from the admin
// API, called by the page with the operator's credentials; these files hold no data. The folder
// is found relative to this module, so `tsx src/main.ts` and `node dist/main.js` both find it.
// Served only when the admin API is on (otherwise a 404 that says why).
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context, Next } from 'koa';
import { HttpError } from './errors.js';

export const CONSOLE_DIR = fileURLToPath(new URL('../../console/', import.meta.url));

/** No inline script or style, nothing from another origin, never framed. */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

interface ConsoleFile {
  body: Buffer;
  type: string;
  etag: string;
}

const FILE_NAME = /^[a-z0-9][a-z0-9._-]{0,100}$/;

export function consoleFiles(options: { enabled: boolean; dir?: string }) {
  const dir = options.dir ?? CONSOLE_DIR;
  let files: Promise<Map<string, ConsoleFile>> | undefined;
  const load = async () => {
    const out = new Map<string, ConsoleFile>();
    for (const name of await readdir(dir)) {
      const type = TYPES[path.extname(name)];
      if (!type || !FILE_NAME.test(name)) continue;
      const body = await readFile(path.join(dir, name));
      out.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
    }
    return out;
  };

  return async (ctx: Context, next: Next) => {
    if (ctx.path !== '/console' && !ctx.path.startsWith('/console/')) return next();
    if (!options.enabled) {
      throw new HttpError(404, 'NOT_FOUND', 'the console is off: it needs the admin API (set admin.token or auth.admins)');
    }
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', 'GET, HEAD');
      throw new HttpError(405, 'UNSUPPORTED', 'the console is read with GET');
    }
    setSecurityHeaders(ctx);
    if (ctx.path === '/console') {
      ctx.status = 308;
      ctx.redirect('/console/');
      return;
    }
    const name = ctx.path === '/console/' ? 'index.html' : ctx.path.slice('/console/'.length);
    files ??= load().catch((err: unknown) => {
      files = undefined; // a failed read is retried by the next request
      throw err;
    });
    const file = FILE_NAME.test(name) ? (await files).get(name) : undefined;
    if (!file) throw new HttpError(404, 'NOT_FOUND', 'no such console file', { path: ctx.path.slice(0, 300) });
    // The files change only with the registry's version: revalidate each time, cheaply.
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('ETag', file.etag);
    if (ctx.get('If-None-Match') === file.etag) {
      ctx.status = 304;
      return;
    }
    ctx.type = file.type;
    ctx.body = file.body;
  };
}

function setSecurityHeaders(ctx: Context): void {
  ctx.set('Content-Security-Policy', CONSOLE_CSP);
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
}
