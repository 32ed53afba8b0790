// Smoke test of the DR benchmark (bench/dr.ts) at the `small` scale: the study replayed with
// skopeo against dr-registry (filesystem, dedup.linkExistingOnHead) and CNCF Distribution 2.8
// (filesystem). It must complete, B (a second host with a fresh client cache) must send none of the
// shared base to dr-registry while it re-sends it to Distribution, and each store must hold exactly
// the distinct blob bytes pushed. The Debian packages are downloaded once into .bench-out/.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReport } from '../../bench/dr/report.js';
import { describeEnvironment, runGroup, type TargetResult } from '../../bench/dr/run.js';
import { buildWorkload, SCALES, type Workload } from '../../bench/dr/workload.js';

const CACHE = path.resolve(import.meta.dirname, '../../.bench-out/dr');
const COURSES = SCALES.small.courses;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('DR benchmark, small scale, skopeo', () => {
  let workload: Workload;
  let work: string;
  const results = new Map<string, TargetResult>();

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-bench-smoke-'));
    workload = await buildWorkload(SCALES.small, CACHE, { courses: COURSES });
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
    const done = await runGroup(['ours-fs', 'dist-fs'], workload, { client: 'skopeo', work, fromSource: true, micro: { blobBytes: 0, loadSeconds: 0, connections: 0, rounds: 0 } });
    for (const result of done) {
      results.set(result.target, result);
      const { pushes, pulls } = result.replay;
      expect(pushes).toHaveLength(2 * (COURSES + 1));
      expect(pulls.map((p) => p.system)).toEqual(['a', 'b']);
      for (const p of pulls) expect(p.received).toBeGreaterThan(workload.base.size);
      // A's first push carries the base; the store then holds each distinct blob exactly once.
      expect(pushes[0]!.sentBase).toBe(workload.base.size);
      for (const p of pushes) expect(p.stored.blobs).toBe(p.uniqueBytes);
    }
    const bBase = (name: string) => sum(results.get(name)!.replay.pushes.filter((p) => p.system === 'b').map((p) => p.sentBase));
    expect(bBase('ours-fs')).toBe(0);
    // A fresh client cannot mount, and Distribution answers its HEAD with 404: B sends the base again.
    expect(bBase('dist-fs')).toBe(workload.base.size);
  }, 300_000);

  it('writes the report with both registries', async () => {
    expect([...results.keys()]).toEqual(['ours-fs', 'dist-fs']);
    const file = path.join(work, 'report', 'benchmarks.md');
    await writeReport(
      {
        command: 'npx tsx bench/dr.ts --scale small',
        client: 'skopeo',
        workload: { scale: 'small', packages: workload.packages.length, baseSize: workload.base.size, baseUnpacked: workload.base.unpackedSize, courseBytes: SCALES.small.courseBytes, courses: COURSES, systems: ['a', 'b'] },
        environment: await describeEnvironment(),
        micro: { blobBytes: 0, loadSeconds: 0, connections: 0, rounds: 0 },
        targets: [...results.values()],
      },
      file,
    );
    const text = await readFile(file, 'utf8');
    expect(text).toContain('| dr-registry, filesystem | ');
    expect(text).toContain('| Distribution 2.8, filesystem | ');
    expect(await readFile(path.join(work, 'report', 'benchmarks', 'small-fs-push-time-vs-courses.svg'), 'utf8')).toMatch(/^<svg /);
  });
});
