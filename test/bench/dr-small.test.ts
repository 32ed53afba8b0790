// Smoke test of the DR benchmark (bench/dr.ts) at the `small` scale: the study replayed with
// skopeo against dr-registry (filesystem, dedup.linkExistingOnHead) and CNCF Distribution 2.8
// (filesystem). It must complete, B (a second host with a fresh client cache) must send none of the
// shared base to dr-registry while it re-sends it to Distribution, and each store must hold exactly
// the distinct blob bytes pushed. With each image, the host's data volume (a smaller one than the
// small scale's, and fewer courses, to keep it fast) goes with `dr-registry volume push` to both
// registries: incremental after c00 (only each course's files read), B's copy of the shared part
// not sent again to dr-registry, every snapshot restorable at fail-over.
// The Debian packages are downloaded once into .bench-out/.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReport } from '../../bench/dr/report.js';
import { describeEnvironment, runGroup, type TargetResult } from '../../bench/dr/run.js';
import { buildData, type DataSet } from '../../bench/dr/data.js';
import { buildWorkload, SCALES, type Workload } from '../../bench/dr/workload.js';

const CACHE = path.resolve(import.meta.dirname, '../../.bench-out/dr');
const COURSES = 3;
const DATA_SCALE = { ...SCALES.small, volumeBytes: 32 * 2 ** 20 };
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('DR benchmark, small scale, skopeo', () => {
  let workload: Workload;
  let data: DataSet;
  let work: string;
  const results = new Map<string, TargetResult>();

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-bench-smoke-'));
    workload = await buildWorkload(SCALES.small, CACHE, { courses: COURSES });
    data = await buildData(DATA_SCALE, COURSES, CACHE);
  }, 300_000);
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('builds the same images from the same packages and seeds', async () => {
    const again = await buildWorkload(SCALES.small, CACHE, { courses: COURSES });
    expect(again.images.map((i) => i.manifest.digest)).toEqual(workload.images.map((i) => i.manifest.digest));
    expect(workload.base.unpackedSize).toBeGreaterThan(80e6);
    expect(workload.image('a', 1).layers.at(-1)!.size).toBeGreaterThan(3.3e6);
  });

  it('replays the study on both registries side by side', async () => {
    const done = await runGroup(['ours-fs', 'dist-fs'], workload, { client: 'skopeo', work, fromSource: true, data, micro: { blobBytes: 0, loadSeconds: 0, connections: 0, rounds: 0 } });
    for (const result of done) {
      results.set(result.target, result);
      const { pushes, pulls } = result.replay;
      expect(pushes).toHaveLength(2 * (COURSES + 1));
      expect(pulls.map((p) => p.system)).toEqual(['a', 'b']);
      for (const p of pulls) expect(p.received).toBeGreaterThan(workload.base.size);
      // Where the time goes (bench/dr/cpu.ts): skopeo's CPU, reaped with it, is the client's; the
      // registry serves or stores every layer; no process uses more than the machine's cores.
      const cores = cpus().length;
      for (const p of [...pushes, ...pulls]) {
        expect(p.clientCpuSeconds).toBeGreaterThan(0);
        expect(p.registryCpuSeconds).toBeGreaterThanOrEqual(0);
        expect(p.proxyCpuSeconds).toBeGreaterThanOrEqual(0);
        expect(p.clientCpuSeconds + p.registryCpuSeconds + p.proxyCpuSeconds).toBeLessThanOrEqual(p.seconds * cores + 0.05);
      }
      for (const p of pulls) expect(p.registryCpuSeconds).toBeGreaterThan(0);
      expect(sum(pushes.map((p) => p.registryCpuSeconds))).toBeGreaterThan(0);
      for (const p of [...pushes, ...pulls]) expect(p.data!.registryCpuSeconds).toBeGreaterThanOrEqual(0);
      // A's first push carries the base; the store then holds each distinct blob exactly once.
      expect(pushes[0]!.sentBase).toBe(workload.base.size);
      for (const p of pushes) expect(p.stored.blobs).toBe(p.uniqueBytes);
      // Data: every point has its snapshot, stored exactly once; after c00 only a course's 25 new files are read and sent.
      for (const p of pushes) {
        expect(p.data!.stored.blobs).toBe(p.data!.uniqueBytes);
        expect(p.data!.volumeBytes).toBe(data.layout.volumeBytes + p.courses * data.layout.courseBytes);
        if (p.courses === 0) continue;
        expect(p.data!.filesRead).toBe(25);
        // Distribution answers the single-request upload (POST ?digest= with the body) with 202, and
        // the CLI's client then sends the body again with the PUT (src/client/registry-client.ts
        // putBlob): every new chunk goes twice to Distribution. Reported to the volumes work; only
        // dr-registry, which takes the single POST, is held to the course's size here.
        expect(p.data!.sent).toBeLessThan(data.layout.courseBytes * (result.target === 'ours-fs' ? 1.1 : 2.2));
        expect(p.data!.sent).toBeGreaterThan(data.layout.courseBytes * 0.8);
      }
      expect(pushes[0]!.data!.sent).toBeGreaterThan(data.layout.volumeBytes * 0.7);
      for (const p of pulls) {
        expect(p.data!.volumeBytes).toBe(data.layout.volumeBytes + COURSES * data.layout.courseBytes);
        expect(p.data!.received).toBeGreaterThan(data.layout.volumeBytes * 0.7);
      }
    }
    // The shared part's chunks are the same blobs on B: dr-registry links them on HEAD, Distribution does not.
    const bData = (name: string) => results.get(name)!.replay.pushes.find((p) => p.system === 'b' && p.courses === 0)!.data!.sent;
    expect(bData('ours-fs')).toBeLessThan(bData('dist-fs') - data.layout.sharedBytes * 0.5);
    const bBase = (name: string) => sum(results.get(name)!.replay.pushes.filter((p) => p.system === 'b').map((p) => p.sentBase));
    expect(bBase('ours-fs')).toBe(0);
    // A fresh client cannot mount, and Distribution answers its HEAD with 404: B sends the base again.
    expect(bBase('dist-fs')).toBe(workload.base.size);
  }, 900_000);

  it('writes the report with both registries', async () => {
    expect([...results.keys()]).toEqual(['ours-fs', 'dist-fs']);
    const file = path.join(work, 'report', 'benchmarks.md');
    await writeReport(
      {
        command: 'npx tsx bench/dr.ts --scale small',
        client: 'skopeo',
        workload: { scale: 'small', packages: workload.packages.length, baseSize: workload.base.size, baseUnpacked: workload.base.unpackedSize, courseBytes: SCALES.small.courseBytes, courses: COURSES, systems: ['a', 'b'], data: data.layout },
        environment: await describeEnvironment(),
        micro: { blobBytes: 0, loadSeconds: 0, connections: 0, rounds: 0 },
        targets: [...results.values()],
      },
      file,
    );
    const text = await readFile(file, 'utf8');
    expect(text).toContain('| dr-registry, filesystem | ');
    expect(text).toContain('| Distribution 2.8, filesystem | ');
    expect(text).toContain('## Issue 12 goals measured here');
    expect(text).toMatch(/\| all 8 recovery points, image \+ data volume \| dr-registry, filesystem \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/);
    expect(text).toContain('## Data volumes: image and data as one recovery point');
    expect(text).toContain('## Where the time goes');
    expect(text).toMatch(/\| all 8 image pushes \| dr-registry, filesystem \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| \d+ % \| [\d.]+ \|/);
    expect(text).toMatch(/\*\*Best reachable ratio\*\* with this client on this \d+-core machine: pushes \d+\.\d\d \(\d+\.\d\d without B's c00, where dedup acts\), fail-over pull \d+\.\d\d/);
    expect(text).toMatch(/\| all 8 image pushes \(A and B, c00\.\.c03\) \| dr-registry, filesystem \| [\d.]+ \| [\d.]+ \| [\d.]+ \| ≤ 0\.8 \([a-z ]+\) \| \d+\.\d\d/);
    expect(await readFile(path.join(work, 'report', 'benchmarks', 'small-fs-data-push-time-vs-courses.svg'), 'utf8')).toMatch(/^<svg /);
    expect(await readFile(path.join(work, 'report', 'benchmarks', 'small-fs-push-time-vs-courses.svg'), 'utf8')).toMatch(/^<svg /);
  });
});
