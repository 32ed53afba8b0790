// Test trees and the comparison that checks a restored tree against its source: every entry by
// lstat (type, mode, owner, size, mtime to the microsecond, symlink target, content by sha256,
// hard-link groups, extended attributes), names as bytes.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, linkSync, lstatSync, mkdirSync, openSync, closeSync, writeSync, ftruncateSync, readdirSync, readlinkSync, readFileSync, symlinkSync, utimesSync, writeFileSync, lutimesSync } from 'node:fs';
import path from 'node:path';
import { xattrSupport } from '../../src/volumes/xattrs.js';

const b = (s: string | Buffer) => (typeof s === 'string' ? Buffer.from(s) : s);
const join = (...parts: (string | Buffer)[]) => Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [b(p)] : [Buffer.from('/'), b(p)])));

/** Deterministic pseudo-random bytes. */
export function pseudoRandom(seed: string, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let block = createHash('sha256').update(seed).digest();
  for (let o = 0; o < size; o += 32) {
    block.copy(out, o, 0, Math.min(32, size - o));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** Modes, owners, symlinks, hard links, empty dirs, sparse files, non-UTF-8 names, a fifo, xattrs. */
export function makeCraftedTree(root: string): void {
  mkdirSync(root, { recursive: true });
  const w = (p: Buffer | string, data: Buffer | string, mode = 0o644) => {
    writeFileSync(join(root, p), data);
    chmodSync(join(root, p), mode);
  };
  mkdirSync(join(root, 'empty-dir'));
  mkdirSync(join(root, 'sticky'));
  chmodSync(join(root, 'sticky'), 0o1777);
  mkdirSync(join(root, 'private'));
  chmodSync(join(root, 'private'), 0o700);
  w('empty-file', '');
  w('text.txt', 'hello\n'.repeat(1000));
  w('script.sh', '#!/bin/sh\necho hi\n', 0o755);
  w('setuid-bin', pseudoRandom('setuid', 3000), 0o4755);
  w('private/secret', 'secret', 0o600);
  w('owned', 'owned by 1234:5678');
  chownSync(join(root, 'owned'), 1234, 5678);
  chownSync(join(root, 'private'), 999, 999);
  w('random-2m', pseudoRandom('random-2m', 2 * 1024 * 1024 + 17));
  // Sparse: data at 0, in the middle and at the end of 40 MiB.
  const fd = openSync(join(root, 'sparse'), 'w');
  writeSync(fd, pseudoRandom('sparse-a', 100_000), 0, 100_000, 0);
  writeSync(fd, pseudoRandom('sparse-b', 300_000), 0, 300_000, 20 * 1024 * 1024);
  ftruncateSync(fd, 40 * 1024 * 1024);
  writeSync(fd, Buffer.from('end'), 0, 3, 40 * 1024 * 1024 - 3);
  closeSync(fd);
  // Hard links, also across directories.
  w('linked', pseudoRandom('linked', 5000));
  linkSync(join(root, 'linked'), join(root, 'linked-2'));
  mkdirSync(join(root, 'sub/deeper/deepest'), { recursive: true });
  linkSync(join(root, 'linked'), join(root, 'sub/linked-3'));
  w('sub/deeper/deepest/leaf', 'leaf');
  // Symlinks: relative, absolute, dangling, to a directory, with a non-UTF-8 target.
  symlinkSync('text.txt', join(root, 'link-rel'));
  symlinkSync('/etc/hostname', join(root, 'link-abs'));
  symlinkSync('does/not/exist', join(root, 'link-dangling'));
  symlinkSync('sub/deeper', join(root, 'link-dir'));
  symlinkSync(Buffer.from([0x62, 0x61, 0x64, 0xff]), join(root, 'link-binary'));
  // Names that are not UTF-8.
  const latin1Dir = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in Latin-1
  mkdirSync(join(root, latin1Dir));
  writeFileSync(join(root, latin1Dir, Buffer.from([0xff, 0xfe, 0x2e, 0x74, 0x78, 0x74])), 'not utf-8 name');
  writeFileSync(join(root, 'spaces and = signs\tand\nnewline'), 'odd name');
  writeFileSync(join(root, 'ünïcödé-名前'), 'utf-8 name');
  execFileSync('mkfifo', [path.join(root, 'fifo')]);
  if (xattrSupport()) {
    execFileSync('setfattr', ['-n', 'user.comment', '-v', 'backed up', path.join(root, 'text.txt')]);
    execFileSync('setfattr', ['-n', 'user.binary', '-v', '0sAAECAw==', path.join(root, 'sub')]);
  }
  // Times last (writing into a directory changes its mtime).
  utimesSync(join(root, 'text.txt'), 1_000_000_000.123456, 1_000_000_000.123456);
  lutimesSync(join(root, 'link-rel'), 1_200_000_000, 1_200_000_000);
  utimesSync(join(root, 'sub/deeper'), 1_300_000_000.5, 1_300_000_000.5);
}

/** A directory with one 1.5 GiB sparse file: a few bytes at the start, 4 KiB at 700 MiB. */
export function makeHugeSparse(root: string): void {
  mkdirSync(root, { recursive: true });
  const big = openSync(path.join(root, 'huge-sparse'), 'w');
  writeSync(big, Buffer.from('start'), 0, 5, 0);
  writeSync(big, pseudoRandom('huge-middle', 4096), 0, 4096, 700 * 1024 * 1024 + 3);
  ftruncateSync(big, 1536 * 1024 * 1024 + 5);
  closeSync(big);
}

interface Node {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeUs: bigint;
  ino: bigint;
  nlink: number;
  target?: string;
  sha?: string;
  blocks: number;
}

function scan(root: Buffer): Map<string, Node> {
  const out = new Map<string, Node>();
  const rec = (rel: Buffer | null) => {
    const dir = rel ? join(root, rel) : root;
    for (const name of (readdirSync(dir, { encoding: 'buffer' }) as Buffer[]).sort(Buffer.compare)) {
      const r = rel ? join(rel, name) : name;
      const abs = join(root, r);
      const st = lstatSync(abs, { bigint: true });
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : 'other';
      const node: Node = {
        type,
        mode: Number(st.mode & 0o7777n),
        uid: Number(st.uid),
        gid: Number(st.gid),
        size: type === 'dir' ? 0 : Number(st.size),
        mtimeUs: st.mtimeNs / 1000n,
        ino: st.ino,
        nlink: Number(st.nlink),
        blocks: Number(st.blocks),
      };
      if (type === 'symlink') node.target = (readlinkSync(abs, { encoding: 'buffer' }) as Buffer).toString('base64');
      if (type === 'file') node.sha = createHash('sha256').update(readFileSync(abs)).digest('hex');
      out.set(r.toString('base64'), node);
      if (type === 'dir') rec(r);
    }
  };
  rec(null);
  return out;
}

function xattrDump(root: string): string {
  if (!xattrSupport()) return '';
  return execFileSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'base64', '.'], { cwd: root, encoding: 'latin1' });
}

/** Differences between two trees (empty when identical), paths shown base64 when odd. */
export function compareTrees(a: string, b2: string, options: { checkRootMeta?: boolean } = {}): string[] {
  const A = scan(Buffer.from(a));
  const B = scan(Buffer.from(b2));
  const diffs: string[] = [];
  const show = (k: string) => Buffer.from(k, 'base64').toString();
  for (const [k, x] of A) {
    const y = B.get(k);
    if (!y) {
      diffs.push(`missing: ${show(k)}`);
      continue;
    }
    for (const f of ['type', 'mode', 'uid', 'gid', 'size', 'target', 'sha', 'nlink'] as const) {
      if (f === 'mode' && x.type === 'symlink') continue;
      if (x[f] !== y[f]) diffs.push(`${show(k)}: ${f} ${String(x[f])} != ${String(y[f])}`);
    }
    const dt = x.mtimeUs - y.mtimeUs;
    if (dt > 1n || dt < -1n) diffs.push(`${show(k)}: mtime ${x.mtimeUs}us != ${y.mtimeUs}us`);
    // Sparse files stay sparse: no more blocks than the source (plus a little).
    if (x.type === 'file' && y.blocks > x.blocks + 64) diffs.push(`${show(k)}: ${y.blocks} blocks allocated, source ${x.blocks}`);
  }
  for (const k of B.keys()) if (!A.has(k)) diffs.push(`extra: ${show(k)}`);
  // Hard-link groups: the same sets of paths share an inode on both sides.
  const groups = (m: Map<string, Node>) => {
    const g = new Map<bigint, string[]>();
    for (const [k, n] of m) if (n.type === 'file' && n.nlink > 1) g.set(n.ino, [...(g.get(n.ino) ?? []), k]);
    return [...g.values()].map((v) => v.sort().join('|')).sort();
  };
  if (groups(A).join('\n') !== groups(B).join('\n')) diffs.push(`hard-link groups differ: ${groups(A)} vs ${groups(B)}`);
  if (xattrDump(a) !== xattrDump(b2)) diffs.push('extended attributes differ');
  if (options.checkRootMeta !== false) {
    const ra = lstatSync(a);
    const rb = lstatSync(b2);
    if ((ra.mode & 0o7777) !== (rb.mode & 0o7777) || ra.uid !== rb.uid || ra.gid !== rb.gid) diffs.push('root directory metadata differs');
  }
  return diffs;
}

/** Every file under `dir` (for "nothing written outside DEST" checks). */
export function listAll(dir: string): string[] {
  const out: string[] = [];
  const rec = (rel: Buffer | null) => {
    for (const name of readdirSync(rel ? join(dir, rel) : dir, { encoding: 'buffer', withFileTypes: true })) {
      const r = rel ? join(rel, name.name as unknown as Buffer) : (name.name as unknown as Buffer);
      out.push(r.toString('base64'));
      if (name.isDirectory()) rec(r);
    }
  };
  rec(null);
  return out.sort();
}
