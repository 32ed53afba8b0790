// The /v2 dispatcher. Repository names contain "/", so routes are anchored regexes built from
// the spec's name grammar rather than router parameters. The raw (undecoded) path is matched, so
// "%2e%2e" or "%2f" can never become part of a name.
import type { Context, Next } from 'koa';
import { RegistryError } from '../../registry/errors.js';
import { NAME_PATTERN, isValidName } from '../../registry/names.js';
import type { Registry } from '../../registry/registry.js';
import type { RepositoryAction } from '../auth/scope.js';
import { HttpError } from '../errors.js';
import { deleteBlob, getBlob } from './blobs.js';
import type { OciOptions, Route } from './context.js';
import { listCatalog, listReferrers, listTags } from './listings.js';
import { deleteManifest, getManifest, putManifest } from './manifests.js';
import { cancelUpload, patchUpload, putUpload, startUpload, uploadStatus } from './uploads.js';

type Handler = (route: Route) => Promise<void>;

interface RouteDef {
  pattern: RegExp;
  methods: Record<string, Handler>;
  /** The right a request needs; by default GET/HEAD pull, DELETE deletes, anything else pushes. */
  action?: RepositoryAction;
}

const route = (tail: string, methods: Record<string, Handler>, action?: RepositoryAction): RouteDef => ({
  pattern: new RegExp(`^/v2/(${NAME_PATTERN})/${tail}$`),
  methods,
  action,
});

const ROUTES: RouteDef[] = [
  // Every upload request is part of a push, even a status GET or a cancelling DELETE.
  route('blobs/uploads/?()', { POST: startUpload }, 'push'),
  route('blobs/uploads/([^/]+)', { GET: uploadStatus, PATCH: patchUpload, PUT: putUpload, DELETE: cancelUpload }, 'push'),
  route('blobs/([^/]+)', { GET: getBlob, HEAD: getBlob, DELETE: deleteBlob }),
  route('manifests/([^/]+)', { GET: getManifest, HEAD: getManifest, PUT: putManifest, DELETE: deleteManifest }),
  route('tags/list()', { GET: listTags }),
  route('referrers/([^/]+)', { GET: listReferrers }),
];

// A path with a known endpoint shape but a name outside the grammar gets NAME_INVALID.
const ENDPOINT_SHAPE = /^\/v2\/(.+)\/(blobs|manifests|tags|referrers)\//;

export function ociRoutes(registry: Registry, options: OciOptions) {
  return async (ctx: Context, next: Next) => {
    if (ctx.path !== '/v2' && !ctx.path.startsWith('/v2/')) return next();
    ctx.set('Docker-Distribution-API-Version', 'registry/2.0');

    if (ctx.path === '/v2/' || ctx.path === '/v2') {
      allow(ctx, ['GET', 'HEAD']);
      await options.gate.admit(ctx, { kind: 'base' });
      ctx.status = 200;
      ctx.body = {};
      return;
    }
    if (ctx.path === '/v2/_catalog') {
      allow(ctx, ['GET']);
      return listCatalog(ctx, registry, await options.gate.admit(ctx, { kind: 'catalog' }));
    }
    for (const def of ROUTES) {
      const m = def.pattern.exec(ctx.path);
      if (!m) continue;
      const repo = m[1]!;
      if (!isValidName(repo)) throw new RegistryError('NAME_INVALID', 'invalid repository name', { name: repo.slice(0, 300) });
      const handler = def.methods[ctx.method];
      if (!handler) {
        ctx.set('Allow', Object.keys(def.methods).join(', '));
        throw new HttpError(405, 'UNSUPPORTED', 'the operation is unsupported', { method: ctx.method });
      }
      const access = await options.gate.admit(ctx, { kind: 'repository', repo, action: def.action ?? actionOf(ctx.method) });
      const signal = abortSignalOf(ctx);
      return handler({ ctx, repo, ref: decodeSegment(m[m.length - 1] ?? ''), registry, options, access, signal });
    }
    const shape = ENDPOINT_SHAPE.exec(ctx.path);
    if (shape) throw new RegistryError('NAME_INVALID', 'invalid repository name', { name: shape[1]!.slice(0, 300) });
    throw new HttpError(404, 'NOT_FOUND', 'no such endpoint', { path: ctx.path.slice(0, 300) });
  };
}

function actionOf(method: string): RepositoryAction {
  if (method === 'GET' || method === 'HEAD') return 'pull';
  return method === 'DELETE' ? 'delete' : 'push';
}

function allow(ctx: Context, methods: string[]): void {
  if (!methods.includes(ctx.method)) {
    ctx.set('Allow', methods.join(', '));
    throw new HttpError(405, 'UNSUPPORTED', 'the operation is unsupported', { method: ctx.method });
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // malformed escapes stay as they are and fail validation downstream
  }
}

/** Aborts when the client goes away before the response is complete, so work stops with it. */
function abortSignalOf(ctx: Context): AbortSignal {
  const controller = new AbortController();
  ctx.res.once('close', () => {
    if (!ctx.res.writableFinished) controller.abort(new Error('client closed the connection'));
  });
  return controller.signal;
}
