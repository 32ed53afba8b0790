// The embedded default driver: one file per object under a root directory.
// Writes go to a temp file under <root>/.tmp and are renamed into place, so a reader never sees a
// partial object. A write whose process died (kill -9) leaves its temp file behind: start-up and,
// while the store is in use, a sweep every tempMaxAge/2 remove temp files not written for
// tempMaxAge, except the ones this process is writing.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import type { ByteRange, ListOptions, ObjectInfo, ObjectStore, OpOptions, PutOptions } from './driver.js';
import { IntegrityError, ObjectNotFoundError, StorageUnavailableError } from './errors.js';
import { FileRangeStream, writeBatched } from './file-io.js';

export interface FilesystemOptions {
  root: string;
  /** fsync each object (and its directory) before it becomes visible: durable across power loss. */
  fsync: boolean;
  /**
   * A temp file not written to for this long (ms) belongs to a write that died with its process
   * and is removed. Must exceed the longest pause of a live write (http.idleTimeout). Default 1 h.
   */
  tempMaxAge?: number;
}

const DEFAULT_TEMP_MAX_AGE_MS = 3600_000;

const TMP_DIR = '.tmp';

export class FilesystemStore implements ObjectStore {
  readonly description: string;
  readonly timeResolutionMs = 1;
  private readonly root: string;
  private readonly tmp: string;
  private readonly tempMaxAge: number;
  /** Temp files this process is writing: never swept, however long their writer pauses. */
  private readonly writing = new Set<string>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly options: FilesystemOptions) {
    this.root = path.resolve(options.root);
    this.tmp = path.join(this.root, TMP_DIR);
    this.description = `filesystem:${this.root}`;
    this.tempMaxAge = options.tempMaxAge ?? DEFAULT_TEMP_MAX_AGE_MS;
  }

  /** Removes temp files not written to for tempMaxAge that this process is not writing. */
  async sweepTemp(): Promise<{ files: number; bytes: number }> {
    const cutoff = Date.now() - this.tempMaxAge;
    let files = 0;
    let bytes = 0;
    const names = await fs.readdir(this.tmp).catch(() => [] as string[]);
    for (const name of names) {
      const file = path.join(this.tmp, name);
      if (this.writing.has(file)) continue;
      const st = await fs.stat(file).catch(() => undefined);
      if (!st || st.mtimeMs >= cutoff) continue;
      await fs.rm(file, { force: true });
      files++;
      bytes += st.size;
    }
    return { files, bytes };
  }

  /** Starts the periodic temp sweep (once; on first use): dead writes do not wait for a restart. */
  private startSweeper(): void {
    if (this.sweeper) return;
    const every = Math.min(Math.max(this.tempMaxAge / 2, 1000), 10 * 60_000);
    this.sweeper = setInterval(() => void this.sweepTemp().catch(() => undefined), every);
    this.sweeper.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  async check(): Promise<void> {
    try {
      await fs.mkdir(this.tmp, { recursive: true });
      await this.sweepTemp();
      this.startSweeper();
      const probe = path.join(this.tmp, `probe-${randomBytes(6).toString('hex')}`);
      await fs.writeFile(probe, 'ok');
      await fs.rm(probe);
    } catch (err) {
      throw new StorageUnavailableError(`filesystem root ${this.root} is not writable: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  async put(key: string, body: Readable | Uint8Array, options: PutOptions = {}): Promise<number> {
    const target = this.pathOf(key);
    await fs.mkdir(this.tmp, { recursive: true });
    const tmpFile = path.join(this.tmp, `${randomBytes(12).toString('hex')}`);
    this.startSweeper();
    this.writing.add(tmpFile);
    const source = body instanceof Uint8Array ? undefined : body;
    const stop = () => source?.destroy(options.signal?.reason instanceof Error ? options.signal.reason : new Error('aborted'));
    options.signal?.addEventListener('abort', stop, { once: true });
    let handle: fs.FileHandle | undefined;
    try {
      options.signal?.throwIfAborted();
      handle = await fs.open(tmpFile, 'wx');
      // Large writes, flushed in the background as they go; one fsync before the object is visible.
      const written = source ? await writeBatched(source, handle, this.options.fsync) : await writeBytes(handle, body as Uint8Array);
      options.signal?.throwIfAborted();
      if (this.options.fsync) await handle.sync();
      await handle.close();
      handle = undefined;
      await this.renameIntoPlace(tmpFile, target);
      if (this.options.fsync) await fsyncFile(path.dirname(target));
      return written;
    } catch (err) {
      source?.destroy();
      await handle?.close().catch(() => undefined);
      await fs.rm(tmpFile, { force: true });
      throw wrap(err, key);
    } finally {
      this.writing.delete(tmpFile);
      options.signal?.removeEventListener('abort', stop);
    }
  }

  async get(key: string, range?: ByteRange, options: OpOptions = {}): Promise<Readable> {
    const file = this.pathOf(key);
    options.signal?.throwIfAborted();
    let handle: fs.FileHandle;
    let size: number;
    try {
      handle = await fs.open(file, 'r');
    } catch (err) {
      throw wrap(err, key);
    }
    try {
      size = (await handle.stat()).size;
    } catch (err) {
      await handle.close();
      throw wrap(err, key);
    }
    // A range past the end of the file is an error, never a quietly short read.
    if (range?.end !== undefined && range.end >= size) {
      await handle.close();
      throw new IntegrityError(key, `object holds ${size} bytes, the range read ends at ${range.end}`);
    }
    const end = range?.end === undefined ? size : range.end + 1;
    const start = Math.min(range?.start ?? 0, end);
    const stream = new FileRangeStream(handle, key, start, end);
    return options.signal ? addAbortSignal(options.signal, stream) : stream;
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const st = await fs.stat(this.pathOf(key));
      if (!st.isFile()) return undefined;
      return { key, size: st.size, modified: st.mtime };
    } catch (err) {
      const e = wrap(err, key);
      if (e instanceof ObjectNotFoundError) return undefined;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    const file = this.pathOf(key);
    try {
      await fs.rm(file, { force: true });
    } catch (err) {
      throw wrap(err, key);
    }
    await this.pruneEmptyParents(path.dirname(file));
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ObjectInfo> {
    // Walk only the deepest directory that contains every key with this prefix.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash + 1) : '';
    const dir = dirKey ? this.pathOf(dirKey.slice(0, -1)) : this.root;
    yield* this.walk(dir, dirKey, prefix, options);
  }

  private async *walk(dir: string, dirKey: string, prefix: string, options: ListOptions): AsyncIterable<ObjectInfo> {
    options.signal?.throwIfAborted();
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw wrap(err, dirKey);
    }
    // Sort as the keys sort: a directory "a" holds keys "a/...", which sort after "a-b".
    const items = entries
      .filter((e) => !(dirKey === '' && e.name === TMP_DIR))
      .map((e) => ({ entry: e, sortKey: e.isDirectory() ? `${e.name}/` : e.name }))
      .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    const after = options.startAfter;
    for (const { entry, sortKey } of items) {
      const key = dirKey + sortKey;
      if (entry.isDirectory()) {
        // Skip directories that cannot hold a key matching the prefix or after startAfter.
        if (!key.startsWith(prefix) && !prefix.startsWith(key)) continue;
        if (after !== undefined && !after.startsWith(key) && key < after) continue;
        yield* this.walk(path.join(dir, entry.name), key, prefix, options);
      } else if (entry.isFile()) {
        if (!key.startsWith(prefix)) continue;
        if (after !== undefined && key <= after) continue;
        const st = await fs.stat(path.join(dir, entry.name)).catch(() => undefined);
        if (st) yield { key, size: st.size, modified: st.mtime };
      }
    }
  }

  /** Maps a key to a path, refusing anything that could leave the root. */
  private pathOf(key: string): string {
    if (
      key === '' ||
      key.startsWith('/') ||
      key.includes('\\') ||
      key.includes('\0') ||
      key.split('/').some((part) => part === '' || part === '.' || part === '..' || part === TMP_DIR)
    ) {
      throw new Error(`invalid storage key: ${JSON.stringify(key)}`);
    }
    return path.join(this.root, ...key.split('/'));
  }

  private async renameIntoPlace(tmpFile: string, target: string): Promise<void> {
    // A concurrent delete may remove the (empty) parent between mkdir and rename: retry. Many
    // writers and deleters in one directory (the collector's) can make that happen repeatedly,
    // so back off a little each time.
    for (let attempt = 0; ; attempt++) {
      try {
        // mkdir itself can fail with ENOENT when a parent it just made is pruned under it.
        await fs.mkdir(path.dirname(target), { recursive: true });
        await fs.rename(tmpFile, target);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Node's recursive mkdir answers ENOTDIR, not ENOENT, when a parent it has just seen is
        // pruned before it looks again (a put failed so in CI, about 1 in 10,000 with several
        // processes churning one folder). A real file in the way is not a race: fail at once.
        const raced = code === 'ENOENT' || (code === 'ENOTDIR' && !(await this.fileInTheWay(path.dirname(target))));
        if (!raced || attempt >= 100) throw err;
        await new Promise((r) => setTimeout(r, Math.min(attempt, 10)));
      }
    }
  }

  /** True when `dir` or one of its parents under the root exists and is not a directory. */
  private async fileInTheWay(dir: string): Promise<boolean> {
    for (; dir.startsWith(this.root + path.sep); dir = path.dirname(dir)) {
      const st = await fs.lstat(dir).catch(() => undefined);
      if (st) return !st.isDirectory();
    }
    return false;
  }

  private async pruneEmptyParents(dir: string): Promise<void> {
    while (dir.startsWith(this.root + path.sep) && dir !== this.root) {
      try {
        await fs.rmdir(dir);
      } catch {
        return; // not empty (or already gone): stop climbing
      }
      dir = path.dirname(dir);
    }
  }
}

async function writeBytes(handle: fs.FileHandle, bytes: Uint8Array): Promise<number> {
  let done = 0;
  while (done < bytes.byteLength) done += (await handle.write(bytes, done, bytes.byteLength - done, done)).bytesWritten;
  return done;
}

async function fsyncFile(file: string): Promise<void> {
  const handle = await fs.open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function wrap(err: unknown, key: string): Error {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return new ObjectNotFoundError(key);
  if (code === 'ABORT_ERR' || (err as Error)?.name === 'AbortError') return err as Error;
  if (code === 'ENOSPC' || code === 'EACCES' || code === 'EROFS' || code === 'EMFILE' || code === 'EIO') {
    return new StorageUnavailableError(`filesystem: ${(err as Error).message}`, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}
