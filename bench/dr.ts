// The disaster-recovery benchmark (issue 6): the study's Moodle workload pushed to dr-registry and
// to CNCF Distribution 2.8 side by side, then docs/benchmarks.md written from the results.
//   npx tsx bench/dr.ts --scale full                       every target, skopeo, report to docs/
//   npx tsx bench/dr.ts --scale small --targets ours-fs,dist-fs --client docker --out /tmp/b.md
// Options: --scale small|full, --client skopeo|docker, --targets a,b (ours-fs, ours-swift,
// ours-swift-enc, dist-fs, dist-swift), --courses N, --blob-size 1GiB (0 skips), --load-seconds 10
// (0 skips), --connections 32, --rounds 2 (blob push and pull repeated, the best kept), --out FILE,
// --keep (merge with the targets of the previous run of this scale and client, to complete a
// partial run), --report-only (rewrite the report from the
// saved results), --also small/docker (add a section for the saved results of that run).
// dr-registry runs from dist/, built first (--no-build to skip).
// Downloaded packages, generated layers and results are kept under .bench-out/ for reruns.
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { parseSize } from '../src/config/units.js';
import { swiftInstance } from '../test/services/swift.js';
import { buildData } from './dr/data.js';
import { CLIENTS, type ClientKind } from './dr/hosts.js';
import { writeReport, type Results } from './dr/report.js';
import { describeEnvironment, runGroup } from './dr/run.js';
import { TARGETS, type TargetName } from './dr/targets.js';
import { buildWorkload, SCALES, type Scale } from './dr/workload.js';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: 'small' },
    client: { type: 'string', default: 'skopeo' },
    targets: { type: 'string', default: TARGETS.join(',') },
    courses: { type: 'string' },
    'volume-size': { type: 'string' },
    'blob-size': { type: 'string', default: '1GiB' },
    'load-seconds': { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '2' },
    out: { type: 'string', default: path.join(root, 'docs/benchmarks.md') },
    keep: { type: 'boolean', default: false },
    'report-only': { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    also: { type: 'string', default: '' },
  },
});

const scale = SCALES[values.scale as Scale['name']];
if (!scale) throw new Error(`--scale must be one of ${Object.keys(SCALES).join(', ')}`);
const client = values.client as ClientKind;
if (!CLIENTS.includes(client)) throw new Error(`--client must be one of ${CLIENTS.join(', ')}`);
const targets = values.targets!.split(',').map((t) => t.trim()) as TargetName[];
for (const t of targets) if (!TARGETS.includes(t)) throw new Error(`unknown target ${t}; known: ${TARGETS.join(', ')}`);

const cache = path.join(root, '.bench-out', 'dr');
const resultsFile = path.join(cache, `results-${scale.name}-${client}.json`);
const log = (msg: string) => console.log(`${new Date().toISOString().slice(11, 19)} ${msg}`);
// --also small/docker,...: sections for the saved results of other runs (scale/client).
const others = async () =>
  Promise.all(
    values.also!.split(',').filter(Boolean).map(async (sc) => {
      const [s, c] = sc.split('/');
      return JSON.parse(await readFile(path.join(cache, `results-${s}-${c}.json`), 'utf8')) as Results;
    }),
  );
const save = async (r: Results) => {
  await writeFile(resultsFile, JSON.stringify(r, null, 1));
  await writeReport(r, values.out!, await others());
  log(`report written to ${values.out}`);
};

if (values['report-only']) {
  await save(JSON.parse(await readFile(resultsFile, 'utf8')) as Results);
  process.exit(0);
}

if (!values['no-build']) {
  log('npm run build');
  await promisify(execFile)('npm', ['run', 'build'], { cwd: root });
}
const workload = await buildWorkload(scale, cache, { ...(values.courses ? { courses: Number(values.courses) } : {}), log });
// The data volumes (issue 11): --volume-size 0 runs the images alone, as before.
const volumeBytes = values['volume-size'] !== undefined ? (parseSize(values['volume-size']) ?? 0) : scale.volumeBytes;
const data = volumeBytes > 0 ? await buildData({ ...scale, volumeBytes }, workload.scale.courses, cache, log) : undefined;
log(`workload ready: base ${workload.base.size} bytes (${workload.base.unpackedSize} unpacked), ${workload.images.length} images`);

// A Swift of its own (its own ports and data), so the test suite's shared one is never touched.
const swift = targets.some((t) => t.includes('swift'))
  ? swiftInstance('/tmp/drreg-bench-swift', { s3: 8095, object: 6220, container: 6221, account: 6222, memcached: 11215 })
  : undefined;
await swift?.start();
const previous = values.keep ? await readFile(resultsFile, 'utf8').then((t) => JSON.parse(t) as Results, () => undefined) : undefined;
const results: Results = {
  command: `npx tsx bench/dr.ts --scale ${scale.name}${client === 'skopeo' ? '' : ` --client ${client}`}${values.courses ? ` --courses ${values.courses}` : ''}${values['volume-size'] ? ` --volume-size ${values['volume-size']}` : ''}`,
  client,
  workload: {
    scale: scale.name,
    packages: workload.packages.length,
    baseSize: workload.base.size,
    baseUnpacked: workload.base.unpackedSize,
    courseBytes: workload.scale.courses > 0 ? workload.image(workload.scale.systems[0]!, 1).layers.at(-1)!.size : scale.courseBytes,
    courses: workload.scale.courses,
    systems: workload.scale.systems,
    ...(data ? { data: data.layout } : {}),
  },
  environment: await describeEnvironment(),
  micro: { blobBytes: parseSize(values['blob-size']!) ?? 0, loadSeconds: Number(values['load-seconds']), connections: Number(values.connections), rounds: Number(values.rounds) },
  targets: previous?.targets.filter((t) => !targets.includes(t.target)) ?? [],
};
const work = path.join(cache, 'work');
await mkdir(work, { recursive: true });
try {
  // Registries on the same kind of store run side by side (interleaved), one group after the other.
  const groups = [targets.filter((t) => !t.includes('swift')), targets.filter((t) => t.includes('swift'))].filter((g) => g.length);
  for (const group of groups) {
    log(`${group.join(', ')}: start`);
    const done = await runGroup(group, workload, { client, work, data, micro: { ...results.micro, rounds: results.micro.rounds ?? 1 }, log, ...(swift ? { swiftEndpoint: swift.endpoint } : {}) });
    results.targets.push(...done);
    log(`${group.join(', ')}: done in ${done[0]!.seconds.toFixed(0)} s; peak RSS ${done.map((d) => `${d.target} ${d.peakRssMiB.toFixed(0)} MiB`).join(', ')}`);
    await save(results); // after every group, so an interrupted run still leaves a report
  }
} finally {
  await rm(work, { recursive: true, force: true });
  await swift?.stop();
}
