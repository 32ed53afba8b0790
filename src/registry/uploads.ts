// Upload sessions. Bytes stream straight into `data/<id>/<n>` parts while their digest is computed;
// the session's durable state lives in the store, so the next request may land on any replica.
// The running hash is kept in the process that received the previous chunk; any other process
// rebuilds it by re-reading the parts.
import { randomBytes, randomUUID, type Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream';
import { LRUCache } from 'lru-cache';
import type { ObjectStore, OpOptions } from '../storage/driver.js';
import type { BlobIndex, BlobPart, Blobs } from './blobs.js';
import { newHash, parseDigest, type DigestAlgorithm } from './digest.js';
import { RegistryError, digestInvalid, uploadUnknown } from './errors.js';
import { readJson, writeJson } from './objects.js';
import * as paths from './paths.js';
import { overran } from './tombstones.js';

export interface UploadState {
  id: string;
  repo: string;
  offset: number;
  parts: BlobPart[];
  startedAt: string;
  updatedAt: string;
}

export interface AppendOptions extends OpOptions {
  /** Inclusive byte range the client says this chunk covers (Content-Range). */
  range?: { start: number; end: number };
  /** Content-Length of the chunk, when the client sent one. */
  length?: number;
}

interface RunningHash {
  offset: number;
  /** The last part the hash covers: with the offset, proves it covers exactly the state's parts. */
  lastPartKey: string | undefined;
  hash: Hash;
}

const UPLOAD_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class Uploads {
  private readonly hashes = new LRUCache<string, RunningHash>({ max: 1000 });

  constructor(
    private readonly store: ObjectStore,
    private readonly blobs: Blobs,
    /** Called when a committed blob becomes readable in a repository. */
    private readonly linkBlob: (repo: string, digest: string) => Promise<void>,
    /** gc.sweepDelay: a commit slower than half of it checks its blob is still there. */
    private readonly sweepDelayMs = Infinity,
  ) {}

  async start(repo: string, options?: OpOptions): Promise<UploadState> {
    const state = await this.newSession(repo, options);
    this.hashes.set(state.id, { offset: 0, lastPartKey: undefined, hash: newHash('sha256') });
    return state;
  }

  private async newSession(repo: string, options?: OpOptions): Promise<UploadState> {
    const now = new Date().toISOString();
    const state: UploadState = { id: randomUUID(), repo, offset: 0, parts: [], startedAt: now, updatedAt: now };
    await writeJson(this.store, paths.uploadStateKey(state.id), state, options);
    return state;
  }

  async get(repo: string, id: string, options?: OpOptions): Promise<UploadState> {
    if (!UPLOAD_ID_RE.test(id)) throw uploadUnknown(id);
    const state = await readJson<UploadState>(this.store, paths.uploadStateKey(id), options);
    if (!state || state.repo !== repo) throw uploadUnknown(id);
    return state;
  }

  /** Streams one chunk into a new part and records it in the session. */
  async append(repo: string, id: string, body: Readable, options: AppendOptions = {}): Promise<UploadState> {
    const state = await this.get(repo, id, options);
    const { range, length } = options;
    if (range) {
      if (range.start !== state.offset || range.end < range.start) {
        body.resume();
        throw new RegistryError('RANGE_INVALID', 'invalid content range', {
          expectedStart: state.offset,
          start: range.start,
          end: range.end,
        });
      }
      if (length !== undefined && length !== range.end - range.start + 1) {
        body.resume();
        throw new RegistryError('RANGE_INVALID', 'content range does not match content length', { range, length });
      }
    }
    const expected = range ? range.end - range.start + 1 : length;
    const running = (await this.runningHash(state, 'sha256', options.signal)).copy();
    const key = paths.uploadPartKey(id, state.parts.length, randomBytes(4).toString('hex'));
    const written = await this.store.put(key, hashing(body, running), { signal: options.signal, size: expected });
    if (expected !== undefined && written !== expected) {
      await this.store.delete(key);
      throw new RegistryError('SIZE_INVALID', 'chunk length does not match the declared size', {
        declared: expected,
        received: written,
      });
    }
    if (written === 0) {
      await this.store.delete(key);
      return state;
    }
    const next: UploadState = {
      ...state,
      offset: state.offset + written,
      parts: [...state.parts, { key, size: written }],
      updatedAt: new Date().toISOString(),
    };
    await writeJson(this.store, paths.uploadStateKey(id), next, options);
    this.hashes.set(id, { offset: next.offset, lastPartKey: key, hash: running });
    return next;
  }

  /**
   * Finishes a session: verifies the digest over everything received, commits the blob (or drops
   * the parts when it already exists) and links it into the repository. A wrong digest cancels the
   * session, so nothing of it stays behind.
   */
  async complete(repo: string, id: string, digest: string, options: OpOptions = {}): Promise<BlobIndex> {
    const { algorithm } = parseDigest(digest);
    const state = await this.get(repo, id, options);
    const actual = `${algorithm}:${(await this.runningHash(state, algorithm, options.signal)).copy().digest('hex')}`;
    if (actual !== digest) {
      await this.cancel(repo, id);
      throw digestInvalid('digest mismatch', { expected: digest, computed: actual });
    }
    return this.commit(repo, state, digest, options);
  }

  /**
   * A whole blob in one request (POST ?digest= with the body). Its session exists only so that the
   * collector leaves the part alone until a blob index refers to it (src/retention/upload-data.ts):
   * it is written once and never read back or updated, which saves three store calls of the
   * general path (a monolithic upload is what volume pushes send for every chunk).
   */
  async putWhole(repo: string, digest: string, body: Readable | undefined, options: AppendOptions = {}): Promise<BlobIndex> {
    const { algorithm } = parseDigest(digest);
    const state = await this.newSession(repo, options); // no running hash: it never takes a second chunk
    let committing = false;
    try {
      const hash = newHash(algorithm);
      const key = paths.uploadPartKey(state.id, 0, randomBytes(4).toString('hex'));
      const written = body ? await this.store.put(key, hashing(body, hash), { signal: options.signal, size: options.length }) : 0;
      if (options.length !== undefined && written !== options.length) {
        throw new RegistryError('SIZE_INVALID', 'chunk length does not match the declared size', { declared: options.length, received: written });
      }
      const actual = `${algorithm}:${hash.digest('hex')}`;
      if (actual !== digest) throw digestInvalid('digest mismatch', { expected: digest, computed: actual });
      // An empty body left an empty part: the blob has none.
      if (body && written === 0) await this.store.delete(key);
      const parts = written === 0 ? [] : [{ key, size: written }];
      committing = true;
      return await this.commit(repo, { ...state, offset: written, parts }, digest, options);
    } catch (err) {
      // Before the commit nothing refers to the part: the session goes, and its data with it.
      // From the commit on, the part may be the blob's: the session is left to expire.
      if (!committing) await this.removeSession(state.id).catch(() => undefined);
      throw err;
    }
  }

  /** Makes the session's parts the blob `digest` (verified by the caller) and links it into `repo`. */
  private async commit(repo: string, state: UploadState, digest: string, options: OpOptions): Promise<BlobIndex> {
    const id = state.id;
    const committedAt = Date.now();
    let outcome = await this.blobs.commit(digest, state.offset, state.parts, options);
    // A cancel or expiry racing this commit may have removed the parts: never answer 201 then.
    if (outcome === 'created' && !(await this.blobs.partsPresent(state.parts))) {
      await this.blobs.retract(digest, state.parts);
      throw uploadUnknown(id);
    }
    await this.linkBlob(repo, digest);
    if (outcome === 'deduplicated' && overran(committedAt, this.sweepDelayMs) && !(await this.blobs.claim(digest))) {
      // A collector removed the blob we deduplicated against before our link was visible: our
      // own parts are still here, so they become the blob.
      outcome = await this.blobs.commit(digest, state.offset, state.parts, options);
    }
    // Deduplicated: our copy is not needed (only now, once the link to the stored one holds).
    if (outcome === 'deduplicated') await Promise.all(state.parts.map((p) => this.store.delete(p.key)));
    await this.store.delete(paths.uploadStateKey(id));
    this.hashes.delete(id);
    const index = await this.blobs.stat(digest);
    if (!index) throw new Error(`blob ${digest} vanished right after commit`);
    return index;
  }

  async cancel(repo: string, id: string): Promise<void> {
    await this.get(repo, id);
    await this.removeSession(id);
  }

  /**
   * Deletes sessions untouched for longer than maxAgeMs. Only the session: its data goes with the
   * upload-data sweep (src/retention/upload-data.ts), which checks blob indexes first, so a commit
   * racing the expiry never loses the data it just committed. Returns how many.
   */
  async expire(maxAgeMs: number, now = Date.now()): Promise<number> {
    let removed = 0;
    for await (const obj of this.store.list(paths.UPLOADS_PREFIX)) {
      const id = paths.uploadIdFromStateKey(obj.key);
      if (!id) continue;
      const state = await readJson<UploadState>(this.store, obj.key);
      if (!state || now - Date.parse(state.updatedAt) <= maxAgeMs) continue;
      await this.store.delete(obj.key);
      this.hashes.delete(id);
      removed++;
    }
    return removed;
  }

  private async removeSession(id: string): Promise<void> {
    // State first: a commit that starts afterwards finds no session. Then the data prefix rather
    // than the state's list: a racing writer may have added a part.
    await this.store.delete(paths.uploadStateKey(id));
    this.hashes.delete(id);
    const keys: string[] = [];
    for await (const obj of this.store.list(paths.uploadDataPrefix(id))) keys.push(obj.key);
    await Promise.all(keys.map((k) => this.store.delete(k)));
  }

  /** The hash of everything received so far: cached, or rebuilt from the stored parts. */
  private async runningHash(state: UploadState, algorithm: DigestAlgorithm, signal?: AbortSignal): Promise<Hash> {
    const lastPartKey = state.parts.at(-1)?.key;
    const cached = algorithm === 'sha256' ? this.hashes.get(state.id) : undefined;
    // Offset alone is not enough: two racing chunks of equal size give equal offsets.
    if (cached && cached.offset === state.offset && cached.lastPartKey === lastPartKey) return cached.hash;
    const hash = newHash(algorithm);
    for (const part of state.parts) {
      for await (const chunk of await this.store.get(part.key, undefined, { signal })) hash.update(chunk as Buffer);
    }
    if (algorithm === 'sha256') this.hashes.set(state.id, { offset: state.offset, lastPartKey, hash });
    return hash;
  }
}

/**
 * Passes the body through unchanged while feeding the hash; body errors propagate. The body is
 * piped in only when the store first reads: an upload waiting its turn for memory (the S3 budget)
 * holds none of its client's bytes beyond what the request has buffered itself, and TCP holds the
 * client back (docs/memory.md).
 */
function hashing(body: Readable, hash: Hash): Readable {
  return new HashingTap(body, hash);
}

class HashingTap extends Transform {
  private piped = false;

  constructor(
    private readonly body: Readable,
    private readonly hash: Hash,
  ) {
    super();
    // Destroyed before its first read: the body goes too, as a pipeline would have done.
    this.once('close', () => this.connect());
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    done(null, chunk);
  }

  override _read(size: number): void {
    this.connect();
    super._read(size);
  }

  private connect(): void {
    if (this.piped) return;
    this.piped = true;
    pipeline(this.body, this, () => {});
  }
}
