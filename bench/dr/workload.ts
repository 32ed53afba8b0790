// The workload of the study, made without running a container: a Moodle-like server image per
// system, one image per recovery point.
//   base     the web stack, real Debian 12 packages (apt-get download, dpkg-deb -x), one layer
//   config   a few KB per system (its name, its database password), one layer
//   courses  one layer per course, 15 lectures of incompressible bytes derived from a seed
// Image `cNN` of a system is base + config + courses 1..NN. Everything is written once into one
// OCI image layout (tags `a-c00`, ..., `b-c20`) under the cache directory, so reruns reuse it and
// the same packages and seeds always give the same digests.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { promisify } from 'node:util';
import { createGzip, gzipSync } from 'node:zlib';
import { OCI_MANIFEST, seededBytes, sha256, tar } from '../../test/e2e/images.js';

const run = promisify(execFile);
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const LECTURES_PER_COURSE = 15;

export interface Scale {
  name: 'small' | 'full';
  /** File listing the Debian packages of the base layer. */
  packages: string;
  /** Bytes of one course (15 lectures). */
  courseBytes: number;
  courses: number;
  systems: string[];
  /** Bytes of each system's data volume at c00 (bench/dr/data.ts); it grows by `courseBytes` a course. */
  volumeBytes: number;
}

export const SCALES: Record<Scale['name'], Scale> = {
  small: { name: 'small', packages: 'packages-small.txt', courseBytes: 3_300_000, courses: 20, systems: ['a', 'b'], volumeBytes: 64 * 2 ** 20 },
  full: { name: 'full', packages: 'packages-full.txt', courseBytes: 33_000_000, courses: 20, systems: ['a', 'b'], volumeBytes: 2 ** 30 },
};

/** A blob of the layout, with the size of its uncompressed content for layers. */
export interface LayerBlob {
  digest: string;
  size: number;
  diffId: string;
  unpackedSize: number;
  role: 'base' | 'config' | 'course';
}

export interface BuiltImage {
  system: string;
  courses: number;
  /** The layout's tag, e.g. `a-c05`. */
  ref: string;
  manifest: { digest: string; size: number };
  config: { digest: string; size: number };
  layers: LayerBlob[];
  /** Bytes a push of the whole image sends: manifest, config and compressed layers. */
  pushedSize: number;
  /** Sum of the layers' uncompressed sizes: what `docker images` shows. */
  unpackedSize: number;
}

export interface Workload {
  scale: Scale;
  layout: string;
  base: LayerBlob;
  packages: string[];
  images: BuiltImage[];
  image(system: string, courses: number): BuiltImage;
}

const blobPath = (layout: string, digest: string) => path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** Writes bytes as a blob of the layout (once). */
async function putBlob(layout: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256(bytes);
  const file = blobPath(layout, digest);
  if (!(await exists(file))) await writeFile(file, bytes);
  return { digest, size: bytes.length };
}

/** Counts and hashes what flows through. */
function meter() {
  const hash = createHash('sha256');
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  return { stream, result: () => ({ digest: `sha256:${hash.digest('hex')}`, size: bytes }) };
}

/** The package names of a list file (comments and blank lines skipped). */
export async function readPackageList(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/** apt-get download of the packages missing from `debDir`; returns the .deb of each, in list order. */
export async function downloadDebs(packages: string[], debDir: string): Promise<string[]> {
  await mkdir(debDir, { recursive: true });
  const debOf = async () => {
    const files = await readdir(debDir);
    return new Map(packages.map((p) => [p, files.find((f) => f.startsWith(`${p}_`) && f.endsWith('.deb'))]));
  };
  let found = await debOf();
  const missing = packages.filter((p) => !found.get(p));
  if (missing.length) {
    const download = () => run('apt-get', ['download', ...missing], { cwd: debDir, maxBuffer: 64 * 1024 * 1024 });
    try {
      await download();
    } catch {
      // A fresh machine has no package lists yet.
      await run('apt-get', ['update', '-q'], { maxBuffer: 64 * 1024 * 1024 });
      await download();
    }
    found = await debOf();
  }
  return packages.map((p) => {
    const deb = found.get(p);
    if (!deb) throw new Error(`apt-get download did not give a .deb for ${p}`);
    return path.join(debDir, deb);
  });
}

/**
 * The base layer: every package unpacked into one root (in list order, as dpkg-deb -x does), then
 * one tar with sorted names, mtime 0 and owner root (GNU tar), gzipped without a name or time, so
 * the same .deb files give the same digest.
 */
async function buildBase(debs: string[], layout: string, work: string): Promise<LayerBlob> {
  const rootfs = path.join(work, 'rootfs');
  await rm(rootfs, { recursive: true, force: true });
  await mkdir(rootfs, { recursive: true });
  for (const deb of debs) await run('dpkg-deb', ['-x', deb, rootfs]);
  const tarProc = spawn('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--format=gnu', '-C', rootfs, '-cf', '-', '.'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  tarProc.stderr.on('data', (c) => (stderr += c));
  const exited = new Promise<number | null>((r) => tarProc.once('close', r));
  const unpacked = meter();
  const packed = meter();
  const tmp = path.join(work, 'base.tar.gz.tmp');
  await pipeline(tarProc.stdout, unpacked.stream, createGzip({ level: 6 }), packed.stream, createWriteStream(tmp));
  if ((await exited) !== 0) throw new Error(`tar of the base failed: ${stderr}`);
  const { digest, size } = packed.result();
  await rename(tmp, blobPath(layout, digest));
  await rm(rootfs, { recursive: true, force: true });
  const u = unpacked.result();
  return { digest, size, diffId: u.digest, unpackedSize: u.size, role: 'base' };
}

function tarLayer(files: Array<{ name: string; content: Buffer }>, role: LayerBlob['role']) {
  const archive = tar(files);
  // Node's zlib writes no name and mtime 0: the same files give the same bytes.
  const compressed = gzipSync(archive, { level: 6 });
  return { compressed, layer: { digest: sha256(compressed), size: compressed.length, diffId: sha256(archive), unpackedSize: archive.length, role } };
}

function configLayer(system: string) {
  const text = (lines: string[]) => Buffer.from(`${lines.join('\n')}\n`);
  return tarLayer(
    [
      { name: 'etc/hostname', content: text([`moodle-${system}`]) },
      {
        name: 'etc/apache2/sites-available/moodle.conf',
        content: text(['<VirtualHost *:80>', `  ServerName moodle-${system}.example.org`, '  DocumentRoot /var/www/moodle', '</VirtualHost>']),
      },
      {
        name: 'var/www/moodle/config.php',
        content: text([
          '<?php',
          '$CFG = new stdClass();',
          "$CFG->dbtype = 'mariadb';",
          `$CFG->dbname = 'moodle_${system}';`,
          `$CFG->dbpass = '${sha256(Buffer.from(`password-${system}`)).slice(7, 31)}';`,
          `$CFG->wwwroot = 'https://moodle-${system}.example.org';`,
          "$CFG->dataroot = '/var/www/moodledata';",
        ]),
      },
    ],
    'config',
  );
}

function courseLayer(scale: Scale, system: string, course: number) {
  const id = `${system}-${String(course).padStart(2, '0')}`;
  const per = Math.floor(scale.courseBytes / LECTURES_PER_COURSE);
  const files = Array.from({ length: LECTURES_PER_COURSE }, (_, i) => ({
    name: `var/www/moodledata/filedir/course-${id}/lecture-${String(i + 1).padStart(2, '0')}.mp4`,
    content: seededBytes(`dr-bench/${scale.name}/course-${id}/lecture-${i + 1}`, per),
  }));
  return tarLayer(files, 'course');
}

async function writeImage(layout: string, system: string, courses: number, layers: LayerBlob[]): Promise<BuiltImage> {
  const config = await putBlob(
    layout,
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        created: '2024-01-01T00:00:00Z',
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['apache2ctl', '-D', 'FOREGROUND'], ExposedPorts: { '80/tcp': {} } },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
        history: layers.map((l, i) => ({ created: '2024-01-01T00:00:00Z', created_by: i < 2 ? l.role : `course ${i - 1}` })),
      }),
    ),
  );
  const manifest = await putBlob(
    layout,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, ...config },
        layers: layers.map((l) => ({ mediaType: OCI_LAYER_GZIP, digest: l.digest, size: l.size })),
      }),
    ),
  );
  const ref = `${system}-c${String(courses).padStart(2, '0')}`;
  const sum = (f: (l: LayerBlob) => number) => layers.reduce((n, l) => n + f(l), 0);
  return { system, courses, ref, manifest, config, layers, pushedSize: manifest.size + config.size + sum((l) => l.size), unpackedSize: sum((l) => l.unpackedSize) };
}

/**
 * Builds (or finds in `cacheDir`) the workload of a scale. `debDir` keeps the downloaded packages
 * between runs; `courses` can lower the number of courses (the smoke test uses fewer).
 */
export async function buildWorkload(scale: Scale, cacheDir: string, opts: { debDir?: string; courses?: number; log?: (msg: string) => void } = {}): Promise<Workload> {
  const log = opts.log ?? (() => {});
  const courses = opts.courses ?? scale.courses;
  const work = path.join(cacheDir, scale.name);
  const layout = path.join(work, 'layout');
  await mkdir(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  const packages = await readPackageList(path.join(import.meta.dirname, scale.packages));
  const debs = await downloadDebs(packages, opts.debDir ?? path.join(cacheDir, 'debs'));

  // The base is rebuilt only when the packages change.
  const debsKey = sha256(Buffer.from(debs.map((d) => path.basename(d)).join('\n')));
  const baseMeta = path.join(work, 'base.json');
  let base: LayerBlob | undefined;
  const cached = await readFile(baseMeta, 'utf8').then((t) => JSON.parse(t) as { key: string; layer: LayerBlob }, () => undefined);
  if (cached?.key === debsKey && (await exists(blobPath(layout, cached.layer.digest)))) base = cached.layer;
  if (!base) {
    log(`building the base layer from ${debs.length} packages`);
    base = await buildBase(debs, layout, work);
    await writeFile(baseMeta, JSON.stringify({ key: debsKey, layer: base }));
  }

  // Small layers are remembered by name, so a rerun does not generate and compress them again.
  const layersMeta = path.join(work, 'layers.json');
  const known = new Map(Object.entries(await readFile(layersMeta, 'utf8').then((t) => JSON.parse(t) as Record<string, LayerBlob>, () => ({}))));
  const layer = async (id: string, make: () => { compressed: Buffer; layer: LayerBlob }) => {
    const hit = known.get(id);
    if (hit && (await exists(blobPath(layout, hit.digest)))) return hit;
    const made = make();
    await putBlob(layout, made.compressed);
    known.set(id, made.layer);
    return made.layer;
  };
  const images: BuiltImage[] = [];
  for (const system of scale.systems) {
    const layers: LayerBlob[] = [base, await layer(`config-${system}`, () => configLayer(system))];
    images.push(await writeImage(layout, system, 0, [...layers]));
    for (let c = 1; c <= courses; c++) {
      layers.push(await layer(`course-${system}-${c}-${scale.courseBytes}`, () => courseLayer(scale, system, c)));
      images.push(await writeImage(layout, system, c, [...layers]));
    }
  }
  await writeFile(layersMeta, JSON.stringify(Object.fromEntries(known)));
  await writeFile(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: images.map((i) => ({ mediaType: OCI_MANIFEST, ...i.manifest, annotations: { 'org.opencontainers.image.ref.name': i.ref } })),
    }),
  );
  return {
    scale: { ...scale, courses },
    layout,
    base,
    packages,
    images,
    image(system, n) {
      const found = images.find((i) => i.system === system && i.courses === n);
      if (!found) throw new Error(`no image ${system} with ${n} courses`);
      return found;
    },
  };
}
