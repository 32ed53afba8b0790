// Blob uploads: /v2/<name>/blobs/uploads/ and /v2/<name>/blobs/uploads/<id>
// Monolithic (POST ?digest=), POST then PUT, streamed PATCH, chunked PATCH with Content-Range,
// status (GET), cancel (DELETE) and cross-repository mount (POST ?mount=&from=).
import type { Context } from 'koa';
import type { BlobIndex } from '../../registry/blobs.js';
import { parseDigest } from '../../registry/digest.js';
import { RegistryError, digestInvalid } from '../../registry/errors.js';
import { isValidName } from '../../registry/names.js';
import type { UploadState } from '../../registry/uploads.js';
import {
  blobLocation,
  contentLength,
  emptyResponse,
  hasBody,
  uploadLocation,
  uploadRange,
  type Route,
} from './context.js';

export async function startUpload(route: Route): Promise<void> {
  const { ctx, repo, registry, access, signal } = route;
  const mount = queryParam(ctx, 'mount');
  const from = queryParam(ctx, 'from');
  if (mount !== undefined && from !== undefined) {
    parseDigest(mount);
    // A source the token cannot pull from is treated like one without the blob: upload it.
    if (isValidName(from) && access.allows(from, 'pull') && (await registry.mount(repo, from, mount))) {
      ctx.set('Location', blobLocation(repo, mount));
      ctx.set('Docker-Content-Digest', mount);
      emptyResponse(ctx, 201);
      return;
    }
  }
  const digest = queryParam(ctx, 'digest');
  if (digest !== undefined) {
    parseDigest(digest);
    if (ctx.get('Content-Range')) {
      // A chunk range on a monolithic upload is checked as on any chunk (it must start at 0).
      const state = await registry.uploads.start(repo, { signal });
      await appendBody(route, state);
      await commit(route, state.id, digest);
      return;
    }
    const body = hasBody(ctx) ? ctx.req : undefined;
    respondCommitted(ctx, repo, await registry.uploads.putWhole(repo, digest, body, { length: contentLength(ctx), signal }));
    return;
  }
  if (hasBody(ctx)) ctx.req.resume(); // a body without ?digest= carries nothing we can use
  const state = await registry.uploads.start(repo, { signal });
  respondInProgress(ctx, repo, state);
}

export async function uploadStatus({ ctx, repo, ref, registry, signal }: Route): Promise<void> {
  const state = await registry.uploads.get(repo, ref, { signal });
  respondInProgress(ctx, repo, state, 204);
}

export async function patchUpload(route: Route): Promise<void> {
  const { ctx, repo, ref, registry, signal } = route;
  let state = await registry.uploads.get(repo, ref, { signal });
  state = await appendBody(route, state);
  respondInProgress(ctx, repo, state);
}

export async function putUpload(route: Route): Promise<void> {
  const { ctx, repo, ref, registry, signal } = route;
  const digest = queryParam(ctx, 'digest');
  if (digest === undefined) {
    if (hasBody(ctx)) ctx.req.resume();
    throw digestInvalid('the digest query parameter is required');
  }
  parseDigest(digest);
  const state = await registry.uploads.get(repo, ref, { signal });
  await appendBody(route, state);
  await commit(route, state.id, digest);
}

export async function cancelUpload({ ctx, repo, ref, registry }: Route): Promise<void> {
  await registry.uploads.cancel(repo, ref);
  emptyResponse(ctx, 204);
}

async function commit({ ctx, repo, registry, signal }: Route, id: string, digest: string): Promise<void> {
  respondCommitted(ctx, repo, await registry.uploads.complete(repo, id, digest, { signal }));
}

function respondCommitted(ctx: Context, repo: string, index: BlobIndex): void {
  ctx.set('Location', blobLocation(repo, index.digest));
  ctx.set('Docker-Content-Digest', index.digest);
  emptyResponse(ctx, 201);
}

/** Streams the request body (if any) into the upload as one part. */
async function appendBody({ ctx, repo, registry, signal }: Route, state: UploadState): Promise<UploadState> {
  const range = parseContentRange(ctx.get('Content-Range'));
  if (!hasBody(ctx) && !range) return state;
  return registry.uploads.append(repo, state.id, ctx.req, { range, length: contentLength(ctx), signal });
}

function respondInProgress(ctx: Context, repo: string, state: UploadState, status = 202): void {
  ctx.set('Location', uploadLocation(repo, state.id));
  ctx.set('Range', uploadRange(state.offset));
  ctx.set('Docker-Upload-UUID', state.id);
  emptyResponse(ctx, status);
}

/** Content-Range of a chunk: "<start>-<end>", tolerating "bytes " / "bytes=" and "/<total>". */
function parseContentRange(header: string): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!m) throw new RegistryError('RANGE_INVALID', 'malformed Content-Range', { contentRange: header.slice(0, 100) });
  return { start: Number(m[1]), end: Number(m[2]) };
}

function queryParam(ctx: Context, name: string): string | undefined {
  const value = ctx.query[name];
  if (Array.isArray(value)) return value[0];
  return value === undefined || value === '' ? undefined : value;
}
