// Restoring a snapshot into an empty directory. Nothing is written outside DEST: every path is
// checked (relative, no '..', no NUL), an entry's parent must be a directory this restore made
// (so no path goes through a symlink or a file), files are created with O_EXCL|O_NOFOLLOW, hard
// links may only point at files this restore wrote, and symlinks are made last, after every
// write through a path. Every chunk is verified against its digest and its length.
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { type FileHandle, chown, link, lchown, lutimes, mkdir, open, readdir, symlink, utimes, chmod } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip as gunzipCb } from 'node:zlib';
import { RegistryClientError, type RegistryClient } from '../client/registry-client.js';
import { entryPath, FormatError, isRoot, nameBytes, safeComponents, type Entry } from './format.js';
import { loadSnapshot } from './snapshot.js';
import { writeXattrs } from './xattrs.js';

const gunzip = promisify(gunzipCb);
const execFileP = promisify(execFile);

export interface PullOptions {
  client: RegistryClient;
  repo: string;
  reference: string;
  dest: string;
  concurrency?: number;
  onProgress?: (p: { bytesDone: number; totalBytes: number }) => void;
}

export interface PullResult {
  digest: string;
  totalBytes: number;
  receivedBytes: number;
  files: number;
  entries: number;
  chunks: number;
  seconds: number;
}

/** A file's modification time as utimes wants it: seconds, to the microsecond. */
const seconds = (ns: string) => Number(BigInt(ns) / 1000n) / 1e6;

const BLOCK = 4096;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

/** Writes `data` at `pos`, leaving file-aligned 4 KiB blocks of zeros unwritten (holes stay holes). */
async function writeSparse(fh: FileHandle, data: Buffer, pos: number): Promise<void> {
  let runStart = -1;
  let o = 0;
  const flush = async (end: number) => {
    if (runStart >= 0) await fh.write(data, runStart, end - runStart, pos + runStart);
    runStart = -1;
  };
  while (o < data.length) {
    const next = Math.min(data.length, o + BLOCK - ((pos + o) % BLOCK));
    const zero = next - o === BLOCK && data.compare(ZERO_BLOCK, 0, BLOCK, o, next) === 0;
    if (zero) await flush(o);
    else if (runStart < 0) runStart = o;
    o = next;
  }
  await flush(data.length);
}

export async function pullVolume(options: PullOptions): Promise<PullResult> {
  const started = performance.now();
  const { client, repo } = options;
  const receivedAtStart = client.bytesReceived;
  await mkdir(options.dest, { recursive: true });
  const dest = Buffer.from(options.dest.replace(/\/+$/, '') || '/');
  if ((await readdir(dest)).length > 0) throw new Error(`${options.dest} is not empty`);
  const snapshot = await loadSnapshot(client, repo, options.reference);
  if (!snapshot) throw new RegistryClientError(`${repo}:${options.reference} not found`, 404, 'MANIFEST_UNKNOWN');
  const { chunks, entries } = snapshot.tree;

  // Checks first: paths unique and safe before anything is written.
  const seen = new Set<string>();
  for (const [i, e] of entries.entries()) {
    if (i === 0 && isRoot(e)) continue;
    const p = entryPath(e);
    safeComponents(p);
    const key = p.toString('latin1');
    if (seen.has(key)) throw new FormatError(`path ${JSON.stringify(p.toString())} appears twice in the snapshot`);
    seen.add(key);
  }

  // Chunks in order of use; each fetched once, kept until its last use, a few fetched ahead.
  const uses: number[] = [];
  for (const e of entries) if (e.t === 'f') for (const x of e.e!) if (x.length === 3) uses.push(x[0]);
  const remaining = new Map<number, number>();
  for (const c of uses) remaining.set(c, (remaining.get(c) ?? 0) + 1);
  const cache = new Map<number, Promise<Buffer>>();
  // A chunk used again later stays cached only within this budget (a crafted tree could use
  // every chunk first and last, holding them all); beyond it, a later use fetches it again.
  const CACHE_BUDGET = 256 * 1024 * 1024;
  let cachedBytes = 0;
  const concurrency = options.concurrency ?? 6;
  let nextUse = 0;
  const fetchChunk = (i: number): Promise<Buffer> => {
    let p = cache.get(i);
    if (!p) {
      const c = chunks[i]!;
      p = (async () => {
        const stored = await client.getBlob(repo, c.d);
        let data: Buffer;
        try {
          data = c.z ? await gunzip(stored, { maxOutputLength: c.n + 1 }) : stored;
        } catch (err) {
          throw new FormatError(`chunk ${c.d} does not decompress: ${(err as Error).message}`);
        }
        if (data.length !== c.n) throw new FormatError(`chunk ${c.d} holds ${data.length} bytes, the snapshot says ${c.n}`);
        return data;
      })();
      p.catch(() => undefined);
      cache.set(i, p);
      cachedBytes += c.n;
    }
    return p;
  };
  const useChunk = async (i: number): Promise<Buffer> => {
    // Prefetch: start the next few distinct chunks.
    for (let k = nextUse, started = 0; k < uses.length && started < concurrency; k++) {
      if (!cache.has(uses[k]!)) fetchChunk(uses[k]!);
      started++;
    }
    nextUse++;
    const data = await fetchChunk(i);
    const left = remaining.get(i)! - 1;
    remaining.set(i, left);
    if ((left === 0 || cachedBytes > CACHE_BUDGET) && cache.get(i)) {
      cache.delete(i);
      cachedBytes -= chunks[i]!.n;
    }
    return data;
  };

  const abs = (p: Buffer) => Buffer.concat([dest, Buffer.from('/'), p]);
  const dirs = new Set<string>(['']);
  const regular = new Set<string>();
  const parentOk = (p: Buffer) => {
    const parts = safeComponents(p);
    const parent = Buffer.concat(parts.slice(0, -1).flatMap((x, i) => (i === 0 ? [x] : [Buffer.from('/'), x]))).toString('latin1');
    if (!dirs.has(parent)) {
      throw new FormatError(`entry ${JSON.stringify(p.toString())} is not inside a directory of the snapshot (a path through a symlink or a file)`);
    }
  };
  const isRootUser = process.getuid?.() === 0;
  let bytesDone = 0;
  const totalBytes = snapshot.config.totalBytes;
  let files = 0;
  const xattrItems: { abs: Buffer; x: Record<string, string> }[] = [];
  const dirEntries: Entry[] = [];
  const symlinks: Entry[] = [];

  for (const [i, e] of entries.entries()) {
    if (i === 0 && isRoot(e)) {
      dirEntries.push(e);
      if (e.x) xattrItems.push({ abs: dest, x: e.x });
      continue;
    }
    const p = entryPath(e);
    parentOk(p);
    const target = abs(p);
    switch (e.t) {
      case 'd':
        await mkdir(target, { mode: 0o700 });
        dirs.add(p.toString('latin1'));
        dirEntries.push(e);
        break;
      case 'f': {
        files++;
        const fh = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        try {
          let pos = 0;
          for (const x of e.e!) {
            if (x.length === 1) {
              pos += x[0];
              continue;
            }
            const data = await useChunk(x[0]);
            await writeSparse(fh, data.subarray(x[1], x[1] + x[2]), pos);
            pos += x[2];
            bytesDone += x[2];
          }
          await fh.truncate(e.sz!);
          if (isRootUser) await fh.chown(e.u, e.g);
          await fh.chmod(e.m);
          await fh.utimes(seconds(e.mt), seconds(e.mt));
        } finally {
          await fh.close();
        }
        regular.add(p.toString('latin1'));
        options.onProgress?.({ bytesDone, totalBytes });
        break;
      }
      case 'h': {
        files++;
        const to = nameBytes(e.h, e.hb, 'hard link target');
        if (!regular.has(to.toString('latin1'))) {
          throw new FormatError(`hard link ${JSON.stringify(p.toString())} points at ${JSON.stringify(to.toString())}, not a file restored before it`);
        }
        await link(abs(to), target);
        continue;
      }
      case 'l':
        symlinks.push(e);
        continue;
      case 'p':
        await execFileP('mkfifo', ['-m', '600', '--', target.toString()]);
        break;
      case 'c':
      case 'b': {
        const rd = e.rd!;
        const major = ((rd >> 8) & 0xfff) | ((rd >>> 32) & ~0xfff);
        const minor = (rd & 0xff) | ((rd >> 12) & ~0xff);
        await execFileP('mknod', ['-m', '600', '--', target.toString(), e.t, String(major), String(minor)]);
        break;
      }
    }
    if (e.t === 'p' || e.t === 'c' || e.t === 'b') {
      if (isRootUser) await chown(target, e.u, e.g);
      await chmod(target, e.m);
      await utimes(target, seconds(e.mt), seconds(e.mt));
    }
    if (e.x && e.t !== 'd') xattrItems.push({ abs: target, x: e.x });
  }
  // Extended attributes while no symlink exists yet under DEST.
  for (const e of dirEntries) if (e.x && !isRoot(e)) xattrItems.push({ abs: abs(entryPath(e)), x: e.x });
  await writeXattrs(xattrItems);
  // Symlinks last: nothing is written through a path after this point but their own metadata.
  for (const e of symlinks) {
    const p = entryPath(e);
    parentOk(p);
    const target = abs(p);
    await symlink(nameBytes(e.l, e.lb, 'symlink target'), target);
    if (isRootUser) await lchown(target, e.u, e.g);
    await lutimes(target, seconds(e.mt), seconds(e.mt));
  }
  // Directories: owner, mode and times, deepest first (setting a child's times changes its parent's).
  for (const e of dirEntries.reverse()) {
    const target = isRoot(e) ? dest : abs(entryPath(e));
    if (isRootUser) await lchown(target, e.u, e.g);
    await chmod(target, e.m);
    await utimes(target, seconds(e.mt), seconds(e.mt));
  }
  return {
    digest: snapshot.digest,
    totalBytes,
    receivedBytes: client.bytesReceived - receivedAtStart,
    files,
    entries: entries.length,
    chunks: chunks.length,
    seconds: (performance.now() - started) / 1000,
  };
}
