// Volume snapshots against restic on the same tree, side by side in one run: first backup,
// incremental backup after changing 1% of the bytes in a few files, restore; seconds and bytes
// stored (registry on the filesystem, restic with a local repository, same disk). Writes
// docs/benchmarks/volumes.md.
//   npm run build && npx tsx bench/volumes.ts [--size 2GiB] [--out docs/benchmarks/volumes.md]
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { RegistryClient } from '../src/client/registry-client.js';
import { parseSize } from '../src/config/units.js';
import { DEFAULT_SIZES } from '../src/volumes/chunker.js';
import { pullVolume } from '../src/volumes/pull.js';
import { pushVolume } from '../src/volumes/push.js';
import { compareTrees } from '../test/volumes/trees.js';
import { startOurs, timed } from './lib.js';

const run = promisify(execFile);
const { values } = parseArgs({ options: { size: { type: 'string', default: '2GiB' }, out: { type: 'string', default: 'docs/benchmarks/volumes.md' } } });
const total = parseSize(values.size!)!;
const MiB = 1024 * 1024;
const work = await mkdtemp(path.join(tmpdir(), 'drreg-bench-vol-'));
const tree = path.join(work, 'tree');

/** Log-like text: compressible about 3x, not repetitive enough to dedup. */
function textBytes(size: number): Buffer {
  const words = ['GET', 'POST', '/course/view.php', 'id=', 'user', 'session', 'ok', '200', '404', 'moodle', 'quiz', 'attempt', 'grade'];
  const parts: string[] = [];
  let n = 0;
  const rnd = randomBytes(size / 8 + 1024);
  let r = 0;
  while (n < size) {
    const line = `${1_700_000_000 + rnd.readUInt32LE(r)} ${words[rnd[r + 4]! % words.length]} ${words[rnd[r + 5]! % words.length]}${rnd.readUInt16LE(r + 6)} ${rnd.readUInt32LE(r + 8).toString(36)}\n`;
    r = (r + 12) % (rnd.length - 16);
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

// The tree: 60% incompressible (media, archives) in 32 MiB files, 35% text in 8 MiB files, 5% in
// 2000 small files (4..100 KiB).
mkdirSync(path.join(tree, 'media'), { recursive: true });
mkdirSync(path.join(tree, 'logs'));
mkdirSync(path.join(tree, 'small'));
const mediaFiles: string[] = [];
for (let i = 0, left = total * 0.6; left > 0; i++, left -= 32 * MiB) {
  const f = path.join(tree, 'media', `file-${i}.bin`);
  writeFileSync(f, randomBytes(Math.min(32 * MiB, left)));
  mediaFiles.push(f);
}
for (let i = 0, left = total * 0.35; left > 0; i++, left -= 8 * MiB) writeFileSync(path.join(tree, 'logs', `log-${i}.txt`), textBytes(Math.min(8 * MiB, left)));
for (let i = 0, left = total * 0.05; left > 0 && i < 100_000; i++) {
  const size = Math.min(left, 4096 + ((i * 7919) % (96 * 1024)));
  writeFileSync(path.join(tree, 'small', `s-${i}.dat`), i % 2 ? randomBytes(size) : textBytes(size));
  left -= size;
}
const du = async (dir: string) => Number((await run('du', ['-sb', dir])).stdout.split('\t')[0]);
const treeBytes = await du(tree);

/** 1% of the bytes, in place, in 5 media files. */
function change(): void {
  const per = Math.floor((treeBytes * 0.01) / 5);
  for (let k = 0; k < 5; k++) {
    const fd = openSync(mediaFiles[(k * 7) % mediaFiles.length]!, 'r+');
    writeSync(fd, randomBytes(per), 0, per, (k * 3 * MiB) % (16 * MiB));
    closeSync(fd);
  }
}

interface Row {
  tool: string;
  first: number;
  firstStored: number;
  incr: number;
  incrStored: number;
  restore: number;
  extra: string;
}
const rows: Row[] = [];

// Ours: a registry process on the filesystem; this process is the client.
{
  const root = path.join(work, 'registry');
  const reg = await startOurs('dr-registry', { DRREG_STORAGE_FILESYSTEM_ROOT: root });
  const client = new RegistryClient({ registry: reg.url.replace('http://', '') });
  const a = await timed(() => pushVolume({ client, repo: 'bench/vol', tag: 'daily', dir: tree }));
  const firstStored = await du(root);
  change();
  const b = await timed(() => pushVolume({ client, repo: 'bench/vol', tag: 'daily', dir: tree }));
  const incrStored = await du(root);
  const dest = path.join(work, 'restore-ours');
  const c = await timed(() => pullVolume({ client, repo: 'bench/vol', reference: 'daily', dest }));
  const diffs = compareTrees(tree, dest, { checkRootMeta: false });
  if (diffs.length) throw new Error(`restore differs: ${diffs.slice(0, 5).join('; ')}`);
  await rm(dest, { recursive: true, force: true });
  await reg.stop();
  rows.push({
    tool: 'dr-registry',
    first: a.seconds,
    firstStored,
    incr: b.seconds,
    incrStored,
    restore: c.seconds,
    extra: `first: ${a.value.chunks} chunks, sent ${(a.value.sentBytes / MiB).toFixed(0)} MiB; incremental: read ${b.value.filesRead} files, sent ${(b.value.sentBytes / MiB).toFixed(1)} MiB (${((100 * b.value.sentBytes) / treeBytes).toFixed(2)}%)`,
  });
  // restic then backs up the tree as it is now and sees the same kind of 1% change.
}

{
  const repo = path.join(work, 'restic');
  const env = { ...process.env, RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: path.join(work, 'restic-cache') };
  await run('restic', ['init', '--repo', repo], { env });
  const a = await timed(() => run('restic', ['backup', '--repo', repo, '--quiet', tree], { env, maxBuffer: 64 * MiB }));
  const firstStored = await du(repo);
  change();
  const b = await timed(() => run('restic', ['backup', '--repo', repo, '--quiet', tree], { env, maxBuffer: 64 * MiB }));
  const incrStored = await du(repo);
  const dest = path.join(work, 'restore-restic');
  const c = await timed(() => run('restic', ['restore', 'latest', '--repo', repo, '--target', dest], { env, maxBuffer: 64 * MiB }));
  const version = (await run('restic', ['version'])).stdout.trim();
  rows.push({ tool: 'restic', first: a.seconds, firstStored, incr: b.seconds, incrStored, restore: c.seconds, extra: version });
}
await rm(work, { recursive: true, force: true });

const mib = (n: number) => (n / MiB).toFixed(1);
const [ours, restic] = rows as [Row, Row];
const md = `# Volume snapshots vs restic

<!-- generated by \`npx tsx bench/volumes.ts --size ${values.size}\`; do not edit by hand -->

Generated by \`npx tsx bench/volumes.ts --size ${values.size}\` (see \`bench/volumes.ts\`) on ${new Date().toISOString().slice(0, 10)}
(${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, a machine shared with other work: seconds are indicative).

Tree: ${mib(treeBytes)} MiB — 60% incompressible data in 32 MiB files, 35% log-like text in 8 MiB files,
5% in small files (4–100 KiB). Incremental: 1% of the bytes overwritten in place in 5 files.
dr-registry: a registry process on the filesystem store, the client in the bench process, chunks
${DEFAULT_SIZES.min / 1024}/${DEFAULT_SIZES.avg / 1024}/${DEFAULT_SIZES.max / 1024} KiB. restic: a local repository on the same disk.
Bytes stored: \`du -sb\` of the registry root or the restic repository.

| | dr-registry | restic | ratio |
|---|---:|---:|---:|
| first backup (s) | ${ours.first.toFixed(1)} | ${restic.first.toFixed(1)} | ${(ours.first / restic.first).toFixed(2)} |
| stored after first (MiB) | ${mib(ours.firstStored)} | ${mib(restic.firstStored)} | ${(ours.firstStored / restic.firstStored).toFixed(3)} |
| incremental after 1% change (s) | ${ours.incr.toFixed(1)} | ${restic.incr.toFixed(1)} | ${(ours.incr / restic.incr).toFixed(2)} |
| stored after incremental (MiB) | ${mib(ours.incrStored)} | ${mib(restic.incrStored)} | ${(ours.incrStored / restic.incrStored).toFixed(3)} |
| restore (s) | ${ours.restore.toFixed(1)} | ${restic.restore.toFixed(1)} | ${(ours.restore / restic.restore).toFixed(2)} |

- dr-registry: ${ours.extra}; the restore was compared with the tree (content and metadata).
- ${restic.extra}
`;
await writeFile(values.out!, md);
console.log(md);
