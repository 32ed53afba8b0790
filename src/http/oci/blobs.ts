// Blob reads (GET/HEAD, with ranges) and deletes: /v2/<name>/blobs/<digest>
import { HttpError } from '../errors.js';
import { parseDigest } from '../../registry/digest.js';
import { RegistryError, blobUnknown } from '../../registry/errors.js';
import type { Context } from 'koa';
import { isRecycling, type ByteRange, type RecyclingStream } from '../../storage/driver.js';
import { emptyResponse, type Route } from './context.js';

export async function getBlob({ ctx, repo, ref, registry, options, access, signal }: Route): Promise<void> {
  parseDigest(ref);
  // A HEAD is how a pushing client decides to skip an upload: it claims the blob (tombstone, store
  // read, link refresh; docs/retention-and-gc.md). A GET relies on nothing afterwards: the link
  // (the right to read) and the index, cached as it is immutable, are enough, read at once.
  const head = ctx.method === 'HEAD';
  let index = head ? await registry.blobs.claimInRepo(repo, ref, { signal }) : await registry.blobs.statInRepo(repo, ref, { signal });
  if (!index && head && options.linkExistingOnHead && access.allows(repo, 'push')) {
    // Only from a repository the caller may read: a HEAD must not hand out another's blob.
    index = await registry.linkExisting(repo, ref, async (holder) => access.mayRead(holder));
  }
  if (!index) throw blobUnknown(ref);
  ctx.set('Docker-Content-Digest', index.digest);
  ctx.set('Accept-Ranges', 'bytes');
  ctx.set('Cache-Control', 'max-age=31536000');
  ctx.set('ETag', `"${index.digest}"`);
  ctx.type = 'application/octet-stream';
  if (options.redirectBlobs && ctx.method === 'GET' && !ctx.get('Range')) {
    const direct = await registry.blobs.directUrl(index, REDIRECT_EXPIRY_SECONDS);
    if (direct) {
      ctx.status = 307;
      ctx.redirect(direct);
      return;
    }
  }
  const range = parseRangeHeader(ctx.get('Range'), index.size);
  if (range === 'unsatisfiable') {
    ctx.set('Content-Range', `bytes */${index.size}`);
    throw new HttpError(416, 'RANGE_INVALID', 'requested range not satisfiable', { size: index.size });
  }
  if (range) {
    ctx.status = 206;
    ctx.set('Content-Range', `bytes ${range.start}-${range.end}/${index.size}`);
  } else {
    ctx.status = 200;
  }
  const length = range ? range.end - range.start + 1 : index.size;
  if (ctx.method === 'HEAD') {
    ctx.length = length;
    return;
  }
  let body;
  try {
    body = await registry.blobs.open(index, range, { signal });
  } catch (err) {
    // The cached index may be out of date (the blob collected, then pushed again with new parts):
    // once, with the index as the store has it now.
    if (!(err instanceof RegistryError && err.code === 'BLOB_UNKNOWN')) throw err;
    const fresh = await registry.blobs.read(ref, { signal });
    if (!fresh || fresh.size !== index.size) throw err;
    body = await registry.blobs.open(fresh, range, { signal });
  }
  ctx.length = length;
  if (isRecycling(body)) sendRecycling(ctx, body);
  else ctx.body = body;
}

/**
 * Writes a recycling stream (a filesystem read) to the response, handing each chunk back once the
 * socket has taken it, so a pull of any size reuses a few buffers. Koa's own piping cannot tell
 * when a chunk is written. A failing stream is logged as Koa logs one and cuts the response.
 */
function sendRecycling(ctx: Context, body: RecyclingStream): void {
  ctx.respond = false;
  const res = ctx.res;
  res.statusCode = ctx.status;
  res.once('close', () => body.destroy());
  body.on('data', (chunk: Buffer) => {
    if (!res.write(chunk, () => body.recycle(chunk))) {
      body.pause();
      res.once('drain', () => body.resume());
    }
  });
  body.once('end', () => res.end());
  body.once('error', (err) => {
    ctx.app.emit('error', err, ctx);
    res.destroy(err);
  });
}

/** Long enough for a multi-GB download to start; the URL only grants reading this one object. */
const REDIRECT_EXPIRY_SECONDS = 20 * 60;

export async function deleteBlob({ ctx, repo, ref, registry, options }: Route): Promise<void> {
  if (!options.deletesEnabled) throw new RegistryError('UNSUPPORTED', 'deletes are disabled on this registry');
  parseDigest(ref);
  if (!(await registry.blobs.isLinked(repo, ref))) throw blobUnknown(ref);
  await registry.unlinkBlob(repo, ref);
  ctx.set('Docker-Content-Digest', ref);
  emptyResponse(ctx, 202);
}

/**
 * Parses a single "bytes=" range. Returns undefined for no (or an ignorable) Range header, the
 * inclusive range, or "unsatisfiable".
 */
export function parseRangeHeader(header: string, size: number): Required<ByteRange> | undefined | 'unsatisfiable' {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return header.trim().startsWith('bytes=') && !header.includes(',') ? 'unsatisfiable' : undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(size - suffix, 0), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || (m[2] !== '' && Number(m[2]) < start)) return 'unsatisfiable';
  return { start, end };
}
