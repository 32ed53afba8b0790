// Making a snapshot of a directory and pushing it: walk (names as bytes, sorted), reuse the
// extents of files unchanged since the parent snapshot (same size, mtime, inode and ctime: not
// read again), chunk the rest (large files one by one, small files as one concatenated stream so a
// tree of many small files is not a blob per file), compress each chunk where it pays, and upload
// the chunks the registry lacks. Chunks of the parent are known present: no round trip for them.
import { constants, type BigIntStats } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { promisify } from 'node:util';
import { gzip as gzipCb, gzipSync } from 'node:zlib';
import { mapLimit, sha256, type RegistryClient } from '../client/registry-client.js';
import { Chunker, DEFAULT_SIZES, isZero, type ChunkSizes } from './chunker.js';
import {
  ARTIFACT_TYPE,
  chunkDescriptor,
  CONFIG_MEDIA_TYPE,
  encodeTree,
  entryPath,
  FILES_ANNOTATION,
  MAX_LAYERS_PER_MANIFEST,
  OCI_INDEX,
  OCI_MANIFEST,
  PART_ARTIFACT_TYPE,
  setPath,
  SIZE_ANNOTATION,
  TREE_MEDIA_TYPE,
  type ChunkRecord,
  type Descriptor,
  type Entry,
  type Extent,
  type SnapshotConfig,
} from './format.js';
import { loadSnapshot, type Snapshot } from './snapshot.js';
import { readXattrs } from './xattrs.js';

const gzip = promisify(gzipCb);

export interface PushProgress {
  bytesDone: number;
  bytesToRead: number;
  filesDone: number;
  sentBytes: number;
}

export interface PushOptions {
  client: RegistryClient;
  repo: string;
  tag: string;
  /** The directory to snapshot. */
  dir: string;
  /** What the config records as the source (e.g. docker:NAME). */
  sourceLabel?: string;
  sizes?: ChunkSizes;
  /** Make the snapshot incremental against a parent snapshot (default true). */
  useParent?: boolean;
  /**
   * The parent: a tag or digest in the same repository (an error if it is not a snapshot).
   * Default: see findParent.
   */
  parent?: string;
  /** Repositories to try cross-repository mounts from for chunks this one lacks. */
  mountFrom?: string[];
  /** Uploads and existence checks in flight (default 6). */
  concurrency?: number;
  onProgress?: (p: PushProgress) => void;
}

export interface PushResult {
  digest: string;
  reference: string;
  parent?: string;
  totalBytes: number;
  sentBytes: number;
  files: number;
  entries: number;
  chunks: number;
  newChunks: number;
  mountedChunks: number;
  filesRead: number;
  bytesRead: number;
  seconds: number;
}

/** A chunk as extents see it while the snapshot is built: its digest is known once processed. */
interface ChunkRef {
  n: number;
  zero: boolean;
  record?: ChunkRecord;
  done: Promise<void>;
}
type PendingExtent = { ref: ChunkRef; o: number; n: number } | { hole: number };

interface PendingFile {
  entry: Entry;
  start: number;
  end: number;
  extents: PendingExtent[];
}

const READ_BLOCK = 4 * 1024 * 1024;
const zeroRef = (n: number): ChunkRef => ({ n, zero: true, done: Promise.resolve() });
/** Compress a chunk only when gzip saves at least this fraction. */
const GZIP_MIN_SAVING = 0.1;
/** Bytes of a chunk compressed first to see whether compressing it pays. */
const SAMPLE = 64 * 1024;

/** Concatenated data cut into content-defined chunks, each handed to `emit`. */
class ChunkStream {
  private buf: Buffer;
  /** Unconsumed bytes are buf[head, fill). */
  private head = 0;
  private fill = 0;
  private pos = 0;
  private readonly files: PendingFile[] = [];

  constructor(
    private readonly chunker: Chunker,
    private readonly emit: (data: Buffer) => Promise<ChunkRef>,
  ) {
    this.buf = Buffer.allocUnsafe(chunker.sizes.max + 2 * READ_BLOCK);
  }

  /** Appends the file at `fd` (reading until EOF); its extents are filled in as chunks are cut. */
  async appendFile(entry: Entry, fd: { read: (b: Buffer, o: number, l: number, p: number) => Promise<{ bytesRead: number }> }, counters: { bytesRead: number }): Promise<PendingFile> {
    const file: PendingFile = { entry, start: this.pos, end: Infinity, extents: [] };
    this.files.push(file);
    let offset = 0;
    for (;;) {
      while (this.fill - this.head >= this.chunker.sizes.max) await this.cutOne(false);
      // Move the unconsumed bytes to the front only when the space after them runs short.
      if (this.buf.length - this.fill < READ_BLOCK) {
        this.buf.copyWithin(0, this.head, this.fill);
        this.fill -= this.head;
        this.head = 0;
      }
      const { bytesRead } = await fd.read(this.buf, this.fill, this.buf.length - this.fill, offset);
      if (bytesRead === 0) break;
      this.fill += bytesRead;
      this.pos += bytesRead;
      offset += bytesRead;
      counters.bytesRead += bytesRead;
    }
    file.end = this.pos;
    return file;
  }

  private async cutOne(final: boolean): Promise<void> {
    const n = this.chunker.cut(this.buf, this.head, this.fill, final);
    if (n === 0) throw new Error('chunker asked for more data with a full buffer');
    const at = this.head;
    // A chunk of zeros (a hole) is neither copied nor stored.
    const ref = isZero(this.buf, at, at + n) ? zeroRef(n) : await this.emit(Buffer.from(this.buf.subarray(at, at + n)));
    this.head += n;
    const chunkStart = this.pos - (this.fill - this.head) - n;
    const chunkEnd = chunkStart + n;
    while (this.files.length > 0) {
      const f = this.files[0]!;
      const a = Math.max(chunkStart, f.start);
      const b = Math.min(chunkEnd, f.end);
      if (b > a) {
        const last = f.extents[f.extents.length - 1];
        if (ref.zero && last && 'hole' in last) last.hole += b - a;
        else f.extents.push(ref.zero ? { hole: b - a } : { ref, o: a - chunkStart, n: b - a });
      }
      if (f.end <= chunkEnd) this.files.shift();
      else break;
    }
  }

  /** Cuts everything buffered (the end of the stream, or of one large file). */
  async flush(): Promise<void> {
    while (this.fill > this.head) await this.cutOne(true);
    this.head = this.fill = 0;
    this.files.length = 0;
  }
}

async function walk(
  root: Buffer,
  visit: (rel: Buffer, abs: Buffer, st: BigIntStats) => Promise<void>,
): Promise<void> {
  const rec = async (rel: Buffer | null, abs: Buffer) => {
    const names = (await readdir(abs, { encoding: 'buffer' })) as Buffer[];
    names.sort(Buffer.compare);
    for (const name of names) {
      const childRel = rel ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
      const childAbs = Buffer.concat([abs, Buffer.from('/'), name]);
      const st = await lstat(childAbs, { bigint: true });
      await visit(childRel, childAbs, st);
      if (st.isDirectory()) await rec(childRel, childAbs);
    }
  };
  await rec(null, root);
}

function metadata(st: BigIntStats): Pick<Entry, 'm' | 'u' | 'g' | 'mt'> {
  return { m: Number(st.mode & 0o7777n), u: Number(st.uid), g: Number(st.gid), mt: st.mtimeNs.toString() };
}

/** Tags looked at (the last ones in name order) when neither the tag nor `latest` is a snapshot. */
const PARENT_CANDIDATES = 10;

/**
 * The snapshot a push is incremental against: `explicit` (tag or digest) when given, else the
 * tag's own snapshot, else `latest`'s, else the newest (by its created annotation) of the last
 * PARENT_CANDIDATES tags in name order (daily tags such as c01, c02 or 2026-11-30 sort by date)
 * whose config has the same source, so one volume of a system backup is not diffed against another.
 * Any snapshot is correct as a parent (a file is reused only when size, mtime, inode and ctime all
 * match); a good one just saves reading.
 */
export async function findParent(client: RegistryClient, repo: string, tag: string, explicit: string | undefined, source: string): Promise<Snapshot | undefined> {
  if (explicit !== undefined) {
    const s = await loadSnapshot(client, repo, explicit);
    if (!s) throw new Error(`parent ${repo}${explicit.includes(':') ? '@' : ':'}${explicit} does not exist`);
    return s;
  }
  const tryLoad = (ref: string) => loadSnapshot(client, repo, ref).catch(() => undefined);
  const own = await tryLoad(tag);
  if (own) return own;
  if (tag !== 'latest') {
    const latest = await tryLoad('latest');
    if (latest) return latest;
  }
  const tags = (await client.listTags(repo).catch(() => [] as string[])).filter((t) => t !== tag && t !== 'latest');
  tags.sort();
  const candidates: { ref: string; created: string }[] = [];
  await mapLimit(tags.slice(-PARENT_CANDIDATES), 4, async (t) => {
    const m = await client.getManifest(repo, t).catch(() => undefined);
    if (!m) return;
    try {
      const doc = JSON.parse(m.bytes.toString('utf8')) as { artifactType?: string; annotations?: Record<string, string> };
      if (doc.artifactType === ARTIFACT_TYPE) candidates.push({ ref: m.digest, created: doc.annotations?.['org.opencontainers.image.created'] ?? '' });
    } catch {
      /* not JSON: not a candidate */
    }
  });
  candidates.sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0));
  for (const c of candidates) {
    const s = await tryLoad(c.ref);
    if (s && s.config.source === source) return s;
  }
  return undefined;
}

/** Snapshots `options.dir` and pushes it to `repo:tag`. */
export async function pushVolume(options: PushOptions): Promise<PushResult> {
  const started = performance.now();
  const { client, repo, tag } = options;
  const sizes = options.sizes ?? DEFAULT_SIZES;
  const chunker = new Chunker(sizes);
  const concurrency = options.concurrency ?? 6;
  const mountFrom = options.mountFrom ?? [];
  const sentAtStart = client.bytesSent;

  // The parent: the tag's current snapshot. Its chunks are in the repository already.
  let parent: Snapshot | undefined;
  if (options.useParent !== false) parent = await findParent(client, repo, tag, options.parent, options.sourceLabel ?? options.dir);
  const known = new Set<string>(parent?.tree.chunks.map((c) => c.d) ?? []);
  const parentFiles = new Map<string, Entry>();
  if (parent) for (const e of parent.tree.entries) if (e.t === 'f') parentFiles.set(entryPath(e).toString('latin1'), e);

  const root = Buffer.from(options.dir);
  const rootSt = await lstat(root, { bigint: true });
  if (!rootSt.isDirectory()) throw new Error(`${options.dir} is not a directory`);

  // Pass 1: the entries and what must be read.
  const entries: Entry[] = [{ p: '.', t: 'd', ...metadata(rootSt) }];
  const toRead: { entry: Entry; abs: Buffer }[] = [];
  const reused = new Map<Entry, Entry>();
  const firstLink = new Map<string, Buffer>();
  let totalBytes = 0;
  let files = 0;
  let bytesToRead = 0;
  await walk(root, async (rel, abs, st) => {
    const entry: Entry = { t: 'd', ...metadata(st) };
    setPath(entry, rel);
    if (st.isDirectory()) entry.t = 'd';
    else if (st.isSymbolicLink()) {
      entry.t = 'l';
      const target = (await readlink(abs, { encoding: 'buffer' })) as Buffer;
      const f = { p: undefined as string | undefined, pb: undefined as string | undefined };
      setPath(f, target);
      if (f.p !== undefined) entry.l = f.p;
      else entry.lb = f.pb;
    } else if (st.isFile()) {
      files++;
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1n ? firstLink.get(key) : undefined;
      if (first) {
        entry.t = 'h';
        const f: Partial<Entry> = {};
        setPath(f, first);
        if (f.p !== undefined) entry.h = f.p;
        else entry.hb = f.pb;
      } else {
        if (st.nlink > 1n) firstLink.set(key, rel);
        entry.t = 'f';
        entry.sz = Number(st.size);
        entry.ino = st.ino.toString();
        entry.ct = st.ctimeNs.toString();
        totalBytes += entry.sz;
        const prev = parentFiles.get(rel.toString('latin1'));
        if (prev && prev.sz === entry.sz && prev.mt === entry.mt && prev.ino === entry.ino && prev.ct === entry.ct) {
          reused.set(entry, prev);
        } else {
          toRead.push({ entry, abs });
          bytesToRead += entry.sz;
        }
      }
    } else if (st.isFIFO()) entry.t = 'p';
    else if (st.isCharacterDevice() || st.isBlockDevice()) {
      entry.t = st.isCharacterDevice() ? 'c' : 'b';
      entry.rd = Number(st.rdev);
    } else return; // sockets are not data
    entries.push(entry);
  });

  // Pass 2: read what changed, chunk, upload what the registry lacks.
  const byDigest = new Map<string, Promise<void>>();
  let newChunks = 0;
  let mountedChunks = 0;
  let inFlight = 0;
  const waiters: (() => void)[] = [];
  const errors: unknown[] = [];
  const acquire = async () => {
    while (inFlight >= concurrency) await new Promise<void>((r) => waiters.push(r));
    inFlight++;
  };
  const release = () => {
    inFlight--;
    waiters.shift()?.();
  };
  const all: Promise<void>[] = [];
  const emit = async (data: Buffer): Promise<ChunkRef> => {
    if (errors.length > 0) throw errors[0];
    await acquire();
    const ref: ChunkRef = { n: data.length, zero: false, done: Promise.resolve() };
    ref.done = (async () => {
      try {
        // Incompressible data (media, archives, encrypted files) is detected on a sample, so it
        // costs no full compression; the decision depends only on the bytes.
        const sample = data.subarray(0, SAMPLE);
        const pays = sample.length < SAMPLE || gzipSync(sample, { level: 1 }).length <= sample.length * (1 - GZIP_MIN_SAVING);
        const packed = pays ? await gzip(data, { level: 6 }) : data;
        const useGzip = pays && packed.length <= data.length * (1 - GZIP_MIN_SAVING);
        const stored = useGzip ? packed : data;
        const record: ChunkRecord = { d: sha256(stored), s: stored.length, n: data.length };
        if (useGzip) record.z = 1;
        ref.record = record;
        if (known.has(record.d)) return;
        let upload = byDigest.get(record.d);
        if (!upload) {
          upload = (async () => {
            if (await client.hasBlob(repo, record.d)) return;
            const how = await client.putBlob(repo, record.d, stored, mountFrom);
            newChunks++;
            if (how === 'mounted') mountedChunks++;
          })();
          byDigest.set(record.d, upload);
        }
        await upload;
      } catch (err) {
        errors.push(err);
        throw err;
      } finally {
        release();
      }
    })();
    ref.done.catch(() => undefined);
    all.push(ref.done);
    return ref;
  };

  const counters = { bytesRead: 0, filesRead: 0 };
  const pending = new Map<Entry, PendingFile>();
  const small = new ChunkStream(chunker, emit);
  const large = new ChunkStream(chunker, emit);
  let filesDone = 0;
  const report = () =>
    options.onProgress?.({ bytesDone: counters.bytesRead, bytesToRead, filesDone, sentBytes: client.bytesSent - sentAtStart });
  for (const { entry, abs } of toRead) {
    const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      counters.filesRead++;
      // Small files share one stream; a large file is a stream of its own.
      const stream = (entry.sz ?? 0) < sizes.min ? small : large;
      const file = await stream.appendFile(entry, fh, counters);
      if (stream === large) await large.flush();
      entry.sz = file.end - file.start;
      pending.set(entry, file);
    } finally {
      await fh.close();
    }
    filesDone++;
    report();
  }
  await small.flush();
  await Promise.all(all);
  if (errors.length > 0) throw errors[0];
  report();

  // The chunk table, in order of first use; extents as indices into it.
  const chunks: ChunkRecord[] = [];
  const index = new Map<string, number>();
  const indexOf = (c: ChunkRecord) => {
    let i = index.get(c.d);
    if (i === undefined) {
      i = chunks.length;
      chunks.push(c);
      index.set(c.d, i);
    }
    return i;
  };
  for (const entry of entries) {
    if (entry.t !== 'f') continue;
    const prev = reused.get(entry);
    if (prev) {
      entry.e = prev.e!.map((x): Extent => (x.length === 1 ? [x[0]] : [indexOf(parent!.tree.chunks[x[0]]!), x[1], x[2]]));
      continue;
    }
    const file = pending.get(entry)!;
    entry.e = file.extents.map((x): Extent => ('hole' in x ? [x.hole] : [indexOf(x.ref.record!), x.o, x.n]));
  }
  const xattrs = await readXattrs(root);
  if (xattrs.size > 0) {
    for (const e of entries) {
      if (e.t === 'h' || e.t === 'l') continue;
      const x = xattrs.get(e.p === '.' ? '.' : entryPath(e).toString('latin1'));
      if (x) e.x = x;
    }
  }

  // The tree, the config and the manifest(s).
  const treeBytes = encodeTree({ chunks, entries });
  const tree: Descriptor = { mediaType: TREE_MEDIA_TYPE, digest: sha256(treeBytes), size: treeBytes.length };
  const config: SnapshotConfig = {
    version: 1,
    created: new Date().toISOString(),
    source: options.sourceLabel ?? options.dir,
    hostname: hostname(),
    files,
    totalBytes,
    chunks: { ...sizes },
  };
  if (parent) config.parent = parent.digest;
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDesc: Descriptor = { mediaType: CONFIG_MEDIA_TYPE, digest: sha256(configBytes), size: configBytes.length };
  await mapLimit(
    [
      [configDesc, configBytes],
      [tree, treeBytes],
    ] as const,
    2,
    async ([d, bytes]) => {
      if (!(await client.hasBlob(repo, d.digest))) await client.putBlob(repo, d.digest, bytes);
    },
  );
  const annotations = {
    'org.opencontainers.image.created': config.created,
    [SIZE_ANNOTATION]: String(totalBytes),
    [FILES_ANNOTATION]: String(files),
  };
  const layers = [tree, ...chunks.map(chunkDescriptor)];
  let digest: string;
  if (layers.length <= MAX_LAYERS_PER_MANIFEST) {
    const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: ARTIFACT_TYPE, config: configDesc, layers, annotations };
    digest = await client.putManifest(repo, tag, Buffer.from(JSON.stringify(manifest)), OCI_MANIFEST);
  } else {
    // An index over parts, each a manifest of at most MAX_LAYERS_PER_MANIFEST layers (the tree in
    // the first); every part carries the config.
    const parts: Descriptor[] = [];
    for (let i = 0; i < layers.length; i += MAX_LAYERS_PER_MANIFEST) {
      const part = { schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: PART_ARTIFACT_TYPE, config: configDesc, layers: layers.slice(i, i + MAX_LAYERS_PER_MANIFEST) };
      const bytes = Buffer.from(JSON.stringify(part));
      const d = sha256(bytes);
      await client.putManifest(repo, d, bytes, OCI_MANIFEST);
      parts.push({ mediaType: OCI_MANIFEST, digest: d, size: bytes.length, artifactType: PART_ARTIFACT_TYPE });
    }
    const index = { schemaVersion: 2, mediaType: OCI_INDEX, artifactType: ARTIFACT_TYPE, manifests: parts, annotations };
    digest = await client.putManifest(repo, tag, Buffer.from(JSON.stringify(index)), OCI_INDEX);
  }
  return {
    digest,
    reference: `${repo}:${tag}`,
    parent: parent?.digest,
    totalBytes,
    sentBytes: client.bytesSent - sentAtStart,
    files,
    entries: entries.length,
    chunks: chunks.length,
    newChunks,
    mountedChunks,
    filesRead: counters.filesRead,
    bytesRead: counters.bytesRead,
    seconds: (performance.now() - started) / 1000,
  };
}
