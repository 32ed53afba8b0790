// The volume snapshot format (docs/volumes.md): ordinary OCI content. Chunks are blobs named by
// the digest of their stored bytes; a file tree (gzip'd JSON lines) lists every entry with its
// metadata and extents; a manifest with our artifactType references the tree and every chunk, so
// retention, GC, encryption and auth treat a snapshot like any image.
import { gunzipSync, gzipSync } from 'node:zlib';

export const ARTIFACT_TYPE = 'application/vnd.dr-registry.volume.v1';
export const PART_ARTIFACT_TYPE = 'application/vnd.dr-registry.volume.part.v1';
export const CONFIG_MEDIA_TYPE = 'application/vnd.dr-registry.volume.config.v1+json';
export const TREE_MEDIA_TYPE = 'application/vnd.dr-registry.volume.tree.v1.jsonl+gzip';
export const CHUNK_MEDIA_TYPE = 'application/vnd.dr-registry.volume.chunk.v1';
export const CHUNK_GZIP_MEDIA_TYPE = 'application/vnd.dr-registry.volume.chunk.v1+gzip';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
/** Annotation on the manifest (or index): the logical size of the volume in bytes. */
export const SIZE_ANNOTATION = 'io.dr-registry.volume.size';
export const FILES_ANNOTATION = 'io.dr-registry.volume.files';
/**
 * At most this many layers in one manifest: with the config, under the 1,000 descriptors a
 * dr-registry accepts by default (manifests.maxReferences) and ~150 KB of JSON, far under the
 * common 4 MiB manifest limits. An index over parts holds larger volumes (~1 TB per index).
 */
export const MAX_LAYERS_PER_MANIFEST = 990;
/** Reading a tree larger than this is refused (hostile input). */
export const MAX_TREE_BYTES = 1024 * 1024 * 1024;
/** A chunk holding more than this is refused (push cuts at 8 MiB; a gzip bomb is refused early). */
export const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  artifactType?: string;
}

/** One chunk of the tree's chunk table; extents refer to chunks by their index in this table. */
export interface ChunkRecord {
  /** Digest of the stored blob (compressed or not). */
  d: string;
  /** Stored size. */
  s: number;
  /** Length of the data it holds. */
  n: number;
  /** 1 when the blob is gzip. */
  z?: 1;
}

/** [chunk, offset, length] of data, or [length] of zeros (a hole). */
export type Extent = [number, number, number] | [number];

export type EntryType = 'f' | 'd' | 'l' | 'h' | 'p' | 'c' | 'b';

export interface Entry {
  /** Path relative to the volume root, '/'-separated; `pb` (base64) when not valid UTF-8. */
  p?: string;
  pb?: string;
  /** file, dir, symlink, hard link (to `h`), fifo, char device, block device */
  t: EntryType;
  /** Permission bits incl. setuid/setgid/sticky. */
  m: number;
  u: number;
  g: number;
  /** mtime in nanoseconds since the epoch, as a decimal string. */
  mt: string;
  /** Regular files: size in bytes. */
  sz?: number;
  /** Change detection for the next snapshot (not restored): inode and ctime (ns). */
  ino?: string;
  ct?: string;
  /** Symlink target (`lb` base64 when not UTF-8). */
  l?: string;
  lb?: string;
  /** Hard link: the path of the first link (`hb` base64 when not UTF-8). */
  h?: string;
  hb?: string;
  /** Devices: rdev. */
  rd?: number;
  /** Extended attributes: name -> base64 value. */
  x?: Record<string, string>;
  /** Regular files: extents in order, covering exactly `sz` bytes. */
  e?: Extent[];
}

export interface Tree {
  chunks: ChunkRecord[];
  entries: Entry[];
}

export interface SnapshotConfig {
  version: 1;
  created: string;
  source: string;
  hostname: string;
  /** Digest of the snapshot this one was made incrementally against. */
  parent?: string;
  files: number;
  totalBytes: number;
  chunks: { min: number; avg: number; max: number };
}

export class FormatError extends Error {
  override readonly name = 'FormatError';
}

// ---- names as bytes ----

const decoder = new TextDecoder('utf-8', { fatal: true });

/** A name as JSON: the string when the bytes are valid UTF-8 (and round-trip), else base64. */
export function nameField(bytes: Buffer): { s?: string; b?: string } {
  try {
    const s = decoder.decode(bytes);
    if (Buffer.from(s, 'utf8').equals(bytes)) return { s };
  } catch {
    /* not UTF-8 */
  }
  return { b: bytes.toString('base64') };
}

export function nameBytes(s: string | undefined, b: string | undefined, what: string): Buffer {
  if (typeof s === 'string') return Buffer.from(s, 'utf8');
  if (typeof b === 'string') return Buffer.from(b, 'base64');
  throw new FormatError(`${what} missing`);
}

export function entryPath(e: Entry): Buffer {
  return nameBytes(e.p, e.pb, 'entry path');
}

export function setPath(e: Partial<Entry>, bytes: Buffer): void {
  const f = nameField(bytes);
  if (f.s !== undefined) e.p = f.s;
  else e.pb = f.b;
}

/**
 * A snapshot path as safe components: relative, '/'-separated, no empty, '.', '..' or NUL
 * component. Anything else is hostile and refused.
 */
export function safeComponents(p: Buffer): Buffer[] {
  if (p.length === 0) throw new FormatError('empty path in snapshot');
  if (p.includes(0)) throw new FormatError('path with a NUL byte in snapshot');
  if (p[0] === 0x2f) throw new FormatError(`absolute path in snapshot: ${JSON.stringify(p.toString())}`);
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i === p.length || p[i] === 0x2f) {
      const part = p.subarray(start, i);
      const s = part.toString('latin1');
      if (s === '' || s === '.' || s === '..') throw new FormatError(`path with an empty, '.' or '..' component in snapshot: ${JSON.stringify(p.toString())}`);
      parts.push(part);
      start = i + 1;
    }
  }
  return parts;
}

/** Canonical base64 (what Buffer.toString('base64') gives), nothing else. */
export function isBase64(v: string): boolean {
  return /^[A-Za-z0-9+/]*={0,2}$/.test(v) && v.length % 4 === 0 && Buffer.from(v, 'base64').toString('base64') === v;
}

// ---- the tree blob ----

export function encodeTree(tree: Tree): Buffer {
  const lines: string[] = [JSON.stringify({ v: 1, chunks: tree.chunks.length, entries: tree.entries.length })];
  for (const c of tree.chunks) lines.push(JSON.stringify(c));
  for (const e of tree.entries) lines.push(JSON.stringify(e));
  // Level and header fixed (no name, mtime 0): the same tree gives the same bytes.
  return gzipSync(Buffer.from(lines.join('\n') + '\n'), { level: 6 });
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const isNat = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
const isNs = (s: unknown): s is string => typeof s === 'string' && /^-?\d{1,25}$/.test(s);

/** Parses and validates a tree blob; every inconsistency is a FormatError. */
export function decodeTree(blob: Buffer): Tree {
  let text: string;
  try {
    text = gunzipSync(blob, { maxOutputLength: MAX_TREE_BYTES }).toString('utf8');
  } catch (err) {
    throw new FormatError(`snapshot tree is not readable (truncated or corrupt): ${(err as Error).message}`);
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let header: { v?: unknown; chunks?: unknown; entries?: unknown };
  try {
    header = JSON.parse(lines[0] ?? '');
  } catch {
    throw new FormatError('snapshot tree has no header');
  }
  if (header.v !== 1 || !isNat(header.chunks) || !isNat(header.entries)) throw new FormatError('snapshot tree header invalid (version 1 expected)');
  if (lines.length !== 1 + header.chunks + header.entries) {
    throw new FormatError(`snapshot tree truncated: ${lines.length - 1} records, header says ${header.chunks + header.entries}`);
  }
  const parse = (i: number) => {
    try {
      return JSON.parse(lines[i]!);
    } catch {
      throw new FormatError(`snapshot tree record ${i} is not JSON`);
    }
  };
  const chunks: ChunkRecord[] = [];
  for (let i = 1; i <= header.chunks; i++) {
    const c = parse(i) as ChunkRecord;
    if (!c || typeof c.d !== 'string' || !DIGEST_RE.test(c.d) || !isNat(c.s) || !isNat(c.n) || (c.z !== undefined && c.z !== 1)) {
      throw new FormatError(`snapshot chunk record ${i - 1} invalid`);
    }
    if (c.n > MAX_CHUNK_BYTES || c.s > MAX_CHUNK_BYTES + 1024 * 1024) throw new FormatError(`snapshot chunk record ${i - 1} claims ${c.n} bytes, more than ${MAX_CHUNK_BYTES}`);
    chunks.push(c);
  }
  const entries: Entry[] = [];
  for (let i = 1 + header.chunks; i < lines.length; i++) {
    const e = parse(i) as Entry;
    validateEntry(e, chunks, i === 1 + header.chunks);
    entries.push(e);
  }
  return { chunks, entries };
}

/** The first entry may be the volume root itself, path '.', a directory. */
export const isRoot = (e: Entry) => e.p === '.' && e.t === 'd';

function validateEntry(e: Entry, chunks: ChunkRecord[], first: boolean): void {
  if (!e || typeof e !== 'object') throw new FormatError('snapshot entry invalid');
  const where = `snapshot entry ${JSON.stringify(e.p ?? e.pb)}`;
  if (!['f', 'd', 'l', 'h', 'p', 'c', 'b'].includes(e.t)) throw new FormatError(`${where}: unknown type`);
  if (!isNat(e.m) || e.m > 0o7777 || !isNat(e.u) || !isNat(e.g) || !isNs(e.mt)) throw new FormatError(`${where}: bad mode, owner or mtime`);
  if (!(first && isRoot(e))) safeComponents(entryPath(e));
  if (e.t === 'f') {
    if (!isNat(e.sz) || !Array.isArray(e.e)) throw new FormatError(`${where}: file without size or extents`);
    let total = 0;
    for (const x of e.e) {
      if (!Array.isArray(x)) throw new FormatError(`${where}: bad extent`);
      if (x.length === 1) {
        if (!isNat(x[0])) throw new FormatError(`${where}: bad hole`);
        total += x[0];
      } else if (x.length === 3) {
        const [c, o, n] = x;
        const chunk = chunks[c];
        if (!isNat(c) || !chunk || !isNat(o) || !isNat(n) || o + n > chunk.n) throw new FormatError(`${where}: extent outside its chunk`);
        total += n;
      } else throw new FormatError(`${where}: bad extent`);
    }
    if (total !== e.sz) throw new FormatError(`${where}: extents cover ${total} bytes, size is ${e.sz}`);
  }
  if (e.t === 'l') nameBytes(e.l, e.lb, `${where}: symlink target`);
  if (e.t === 'h') safeComponents(nameBytes(e.h, e.hb, `${where}: hard link target`));
  if ((e.t === 'c' || e.t === 'b') && !isNat(e.rd)) throw new FormatError(`${where}: device without rdev`);
  // Values are handed to `setfattr --restore` as `0s<base64>`: anything but canonical base64
  // (a newline) would start a record for another path, outside DEST.
  if (e.x !== undefined && (typeof e.x !== 'object' || e.x === null || Object.values(e.x).some((v) => typeof v !== 'string' || !isBase64(v)))) {
    throw new FormatError(`${where}: bad xattrs`);
  }
}

export function chunkDescriptor(c: ChunkRecord): Descriptor {
  return { mediaType: c.z ? CHUNK_GZIP_MEDIA_TYPE : CHUNK_MEDIA_TYPE, digest: c.d, size: c.s };
}
