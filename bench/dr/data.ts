// The data volumes of the study (issue 11): each system's `moodledata`, kept out of the image and
// pushed as a volume snapshot next to it. Made once from seeds into the cache, then copied into a
// host's volume directory and grown course by course during the replay.
//   shared  the same on A and B (plugins, course templates): many small text files, some media
//   own     each system's own files (incompressible uploads) and logs/caches (compressible text)
//   course  per course: 15 incompressible lectures and 10 compressible forum pages, `courseBytes`
// Sizes scale with `volumeBytes` (full: 1 GiB): shared 25% (5% text, 20% media), own 75% (12%
// text, 63% media). The same seeds always give the same bytes, so reruns reuse the cache.
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { seededBytes } from '../../test/e2e/images.js';
import type { Scale } from './workload.js';

const run = promisify(execFile);

export interface DataLayout {
  /** Bytes of each system's volume at c00. */
  volumeBytes: number;
  /** Of those, bytes that are the same on every system. */
  sharedBytes: number;
  /** Of those, bytes of compressible text files. */
  textBytes: number;
  /** Bytes one course adds, and of those the compressible ones. */
  courseBytes: number;
  courseTextBytes: number;
  files: number;
}

export interface DataSet {
  layout: DataLayout;
  /** A directory with system `sys`'s volume at c00. */
  base(sys: string): string;
  /** A directory with what course `n` of `sys` adds (copied over the volume). */
  course(sys: string, n: number): string;
}

const WORDS = ['user', 'viewed', 'course', 'module', 'forum', 'post', 'quiz', 'attempt', 'graded', 'submitted', 'assignment', 'resource', 'page', 'updated', 'created', 'deleted'];

/** Log- or HTML-like lines: fixed words with seeded ids (gzip shrinks it about 3 to 4 times). */
export function textBytes(seed: string, size: number): Buffer {
  const random = seededBytes(`text/${seed}`, Math.ceil(size / 8) + 64);
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; length < size; i += 8) {
    const r = random.subarray(i % (random.length - 8), (i % (random.length - 8)) + 8);
    const line = `2024-0${1 + (r[0]! % 9)}-1${r[1]! % 10} 1${r[2]! % 10}:${10 + (r[3]! % 50)} ${WORDS[r[4]! % 16]} ${WORDS[r[5]! % 16]} id=${r.readUInt16BE(6)} ${r.toString('hex', 0, 4)}\n`;
    parts.push(line);
    length += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

export function dataLayout(scale: Scale): DataLayout {
  const v = scale.volumeBytes;
  const counts = { sharedText: 1024, sharedMedia: 50, ownText: 32, ownMedia: 160, lectures: 15, forum: 10 };
  const per = (share: number, n: number) => Math.floor((v * share) / n);
  const courseText = Math.floor((scale.courseBytes * 0.1) / counts.forum) * counts.forum;
  const courseMedia = Math.floor((scale.courseBytes - courseText) / counts.lectures) * counts.lectures;
  const shared = per(0.05, counts.sharedText) * counts.sharedText + per(0.2, counts.sharedMedia) * counts.sharedMedia;
  return {
    volumeBytes: shared + per(0.12, counts.ownText) * counts.ownText + per(0.63, counts.ownMedia) * counts.ownMedia,
    sharedBytes: shared,
    textBytes: per(0.05, counts.sharedText) * counts.sharedText + per(0.12, counts.ownText) * counts.ownText,
    courseBytes: courseText + courseMedia,
    courseTextBytes: courseText,
    files: counts.sharedText + counts.sharedMedia + counts.ownText + counts.ownMedia,
  };
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

async function writeFiles(dir: string, files: Array<[string, () => Buffer]>): Promise<void> {
  for (const [name, make] of files) {
    const file = path.join(dir, name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, make());
  }
}

/** Writes (or finds in `cacheDir`) the volumes of every system and the courses they grow by. */
export async function buildData(scale: Scale, courses: number, cacheDir: string, log: (msg: string) => void = () => {}): Promise<DataSet> {
  const layout = dataLayout(scale);
  const v = scale.volumeBytes;
  const root = path.join(cacheDir, scale.name, `data-${v}-${scale.courseBytes}`);
  const base = (sys: string) => path.join(root, sys, 'base');
  // Courses depend on the course size only: runs with another volume size reuse them.
  const course = (sys: string, n: number) => path.join(cacheDir, scale.name, `courses-${scale.courseBytes}`, sys, `course-${pad(n)}`);
  const done = async (dir: string, make: () => Promise<void>) => {
    const marker = `${dir}.done`;
    if (await readFile(marker, 'utf8').then(() => true, () => false)) return;
    await rm(dir, { recursive: true, force: true });
    await make();
    await writeFile(marker, new Date().toISOString());
  };
  const size = (share: number, n: number) => Math.floor((v * share) / n);
  for (const sys of scale.systems) {
    await done(base(sys), async () => {
      log(`writing the data volume of ${sys} (${(layout.volumeBytes / 1e6).toFixed(0)} MB)`);
      const dir = base(sys);
      const files: Array<[string, () => Buffer]> = [];
      // Shared: the same names and bytes on every system.
      for (let i = 0; i < 1024; i++) files.push([`filedir/plugins/plugin-${pad(i >> 5)}/lang/file-${pad(i % 32)}.php`, () => textBytes(`shared/plugin/${i}`, size(0.05, 1024))]);
      for (let i = 0; i < 50; i++) files.push([`filedir/templates/template-${pad(i)}.mp4`, () => seededBytes(`dr-data/shared/template/${i}`, size(0.2, 50))]);
      // Own data.
      for (let i = 0; i < 32; i++) files.push([`cache/logstore-${pad(i)}.log`, () => textBytes(`${sys}/log/${i}`, size(0.12, 32))]);
      for (let i = 0; i < 160; i++) files.push([`filedir/uploads/${pad(i >> 4)}/file-${pad(i, 3)}.bin`, () => seededBytes(`dr-data/${sys}/upload/${i}`, size(0.63, 160))]);
      await writeFiles(dir, files);
    });
    for (let n = 1; n <= courses; n++) {
      await done(course(sys, n), async () => {
        const id = `${sys}-${pad(n)}`;
        const media = (layout.courseBytes - layout.courseTextBytes) / 15;
        const text = layout.courseTextBytes / 10;
        const files: Array<[string, () => Buffer]> = [];
        for (let i = 1; i <= 15; i++) files.push([`filedir/course-${id}/lecture-${pad(i)}.mp4`, () => seededBytes(`dr-data/course-${id}/lecture-${i}`, media)]);
        for (let i = 1; i <= 10; i++) files.push([`filedir/course-${id}/forum-${pad(i)}.html`, () => textBytes(`course-${id}/forum-${i}`, text)]);
        await writeFiles(course(sys, n), files);
      });
    }
  }
  return { layout, base, course };
}

/** Copies `from`'s contents into `to` (created if missing), keeping modes and times. */
export async function copyTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  await run('cp', ['-a', `${from}/.`, to]);
}
