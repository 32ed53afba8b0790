// docs/benchmarks.md and its plots, written from the results of a run (never by hand).
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Environment, TargetResult } from './run.js';
import { lineChart, type Series } from './svg.js';
import { REFERENCE, TARGET_LABELS, TARGETS, type TargetName } from './targets.js';

export interface WorkloadSummary {
  scale: string;
  packages: number;
  baseSize: number;
  baseUnpacked: number;
  courseBytes: number;
  courses: number;
  systems: string[];
}

export interface Results {
  command: string;
  client: string;
  workload: WorkloadSummary;
  environment: Environment;
  targets: TargetResult[];
  micro: { blobBytes: number; loadSeconds: number; connections: number };
}

const COLORS: Record<TargetName, string> = {
  'ours-fs': '#1f77b4',
  'ours-swift': '#2ca02c',
  'ours-swift-enc': '#9467bd',
  'dist-fs': '#d62728',
  'dist-swift': '#ff7f0e',
};

const MB = (n: number) => (n / 1e6).toFixed(1);
const GB = (n: number) => (n / 1e9).toFixed(2);
const s = (n: number) => n.toFixed(1);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const table = (head: string[], rows: string[][]) =>
  [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

function ordered(results: Results): TargetResult[] {
  return [...results.targets].sort((a, b) => TARGETS.indexOf(a.target) - TARGETS.indexOf(b.target));
}

function ratio(ours: number | undefined, theirs: number | undefined): string {
  if (ours === undefined || theirs === undefined || theirs === 0) return '';
  return ` (${(ours / theirs).toFixed(2)}×)`;
}

function summaryRows(results: Results): string[][] {
  return ordered(results).map((t) => {
    const by = (sys: string) => t.replay.pushes.filter((p) => p.system === sys);
    const [a, b] = results.workload.systems.map(by) as [typeof t.replay.pushes, typeof t.replay.pushes];
    const last = t.replay.pushes[t.replay.pushes.length - 1]!;
    const pull = (sys: string) => t.replay.pulls.find((p) => p.system === sys);
    return [
      t.label,
      GB(sum(a.map((p) => p.sent))),
      GB(sum(b.map((p) => p.sent))),
      MB(sum(b.map((p) => p.sentBase))),
      GB(sum(t.replay.pushes.map((p) => p.sent))),
      s(sum(a.map((p) => p.seconds))),
      s(sum(b.map((p) => p.seconds))),
      GB(t.stored.total),
      `${(last.stored.blobs / last.uniqueBytes).toFixed(4)}`,
      results.workload.systems.map((sys) => s(pull(sys)?.seconds ?? NaN)).join(' / '),
    ];
  });
}

function pushTable(results: Results, system: string): string {
  const targets = ordered(results);
  const first = targets[0]!.replay.pushes.filter((p) => p.system === system);
  const head = ['courses', 'image MB (unpacked)', 'new layer MB', ...targets.flatMap((t) => [`${t.target} sent MB`, `${t.target} s`])];
  const rows = first.map((p, i) => [
    String(p.courses),
    `${MB(p.imageSize)} (${MB(p.unpackedSize)})`,
    MB(p.newLayerBytes),
    ...targets.flatMap((t) => {
      const q = t.replay.pushes.filter((x) => x.system === system)[i]!;
      return [MB(q.sent), q.seconds.toFixed(2)];
    }),
  ]);
  return table(head, rows);
}

function microTable(results: Results): string {
  const byName = new Map(results.targets.map((t) => [t.target, t]));
  const mibps = (bytes: number, sec: number) => bytes / 2 ** 20 / sec;
  const rows = ordered(results).map((t) => {
    const ref = REFERENCE[t.target] ? byName.get(REFERENCE[t.target]!) : undefined;
    const b = t.blob;
    const rb = ref?.blob;
    const cell = (v: number | undefined, r: number | undefined, digits: number) => (v === undefined ? 'n/a' : `${v.toFixed(digits)}${ratio(v, r)}`);
    return [
      t.label,
      cell(b && mibps(b.bytes, b.pushSeconds), rb && mibps(rb.bytes, rb.pushSeconds), 0),
      cell(b && mibps(b.bytes, b.pullSeconds), rb && mibps(rb.bytes, rb.pullSeconds), 0),
      cell(t.load?.rps, ref?.load?.rps, 0),
      cell(t.load?.p99ms, ref?.load?.p99ms, 0),
      cell(t.peakRssMiB, ref?.peakRssMiB, 0),
    ];
  });
  const blob = results.micro.blobBytes >= 2 ** 30 ? `${results.micro.blobBytes / 2 ** 30} GiB` : `${MB(results.micro.blobBytes)} MB`;
  return table([
    'registry',
    `${blob} blob push MiB/s`,
    `${blob} blob pull MiB/s`,
    `manifest GET req/s (${results.micro.connections} conn.)`,
    'manifest GET p99 ms',
    'peak RSS MiB',
  ], rows);
}

function charts(results: Results): { sizes: string; times: string; sent: string } {
  const targets = ordered(results);
  const [sysA, sysB] = results.workload.systems as [string, string];
  const dashed = (sys: string) => sys !== sysA;
  const sizes: Series[] = [
    {
      name: `image ${sysA.toUpperCase()} (compressed, as pushed)`,
      color: '#000',
      points: targets[0]!.replay.pushes.filter((p) => p.system === sysA).map((p) => [p.courses, p.imageSize / 1e6]),
    },
  ];
  const times: Series[] = [];
  const sent: Series[] = [];
  for (const t of targets) {
    for (const sys of [sysA, sysB]) {
      const pushes = t.replay.pushes.filter((p) => p.system === sys);
      const name = `${t.target}, ${sys.toUpperCase()}`;
      const style = { color: COLORS[t.target], dashed: dashed(sys) };
      sizes.push({ name: `${name}: store after push`, ...style, points: pushes.map((p) => [p.courses, p.stored.total / 1e6]) });
      times.push({ name, ...style, points: pushes.map((p) => [p.courses, p.seconds]) });
      let total = 0;
      sent.push({ name, ...style, points: pushes.map((p) => [p.courses, (total += p.sent) / 1e6]) });
    }
  }
  const courses = 'courses added';
  return {
    sizes: lineChart({ title: 'Image size and registry storage vs courses', xLabel: courses, yLabel: 'MB', series: sizes }),
    times: lineChart({ title: 'Push time vs courses', xLabel: courses, yLabel: 'seconds per push', series: times }),
    sent: lineChart({ title: 'Bytes sent by each host, cumulated', xLabel: courses, yLabel: 'MB sent since the first push of the host', series: sent }),
  };
}

/** Writes `file` (markdown) and its plots in `<dir of file>/benchmarks/`. */
export async function writeReport(results: Results, file: string): Promise<void> {
  const w = results.workload;
  const env = results.environment;
  const targets = ordered(results);
  const plotDir = path.join(path.dirname(file), 'benchmarks');
  await mkdir(plotDir, { recursive: true });
  const plots = charts(results);
  const names = { sizes: `${w.scale}-size-vs-courses.svg`, times: `${w.scale}-push-time-vs-courses.svg`, sent: `${w.scale}-bytes-sent.svg` };
  for (const k of Object.keys(names) as Array<keyof typeof names>) await writeFile(path.join(plotDir, names[k]), plots[k]);

  const [sysA, sysB] = w.systems as [string, string];
  const finalImages = targets[0]
    ? w.systems.map((sys) => targets[0]!.replay.pushes.filter((p) => p.system === sys).at(-1)!)
    : [];
  const missing = TARGETS.filter((t) => !targets.some((r) => r.target === t));
  const ours = targets.find((t) => t.target === 'ours-fs');
  const dist = targets.find((t) => t.target === 'dist-fs');
  const totalSent = (t: TargetResult) => sum(t.replay.pushes.map((p) => p.sent));
  const bSent = (t: TargetResult) => sum(t.replay.pushes.filter((p) => p.system === sysB).map((p) => p.sent));

  const lines: string[] = [
    '# Benchmarks: the disaster-recovery study',
    '',
    `<!-- generated by \`${results.command}\`; do not edit by hand -->`,
    '',
    `Generated by \`${results.command}\` (see \`bench/dr.ts\`) on ${env.date.slice(0, 10)}, ` +
      `scale \`${w.scale}\`, client \`${results.client}\`. Rerun it to reproduce; \`--scale small\` is the CI smoke test ` +
      '(`test/bench/dr-small.test.ts`).',
    '',
    '## What is measured',
    '',
    'A published study pushed a Moodle server in Docker to a private registry after each course added: the image ' +
      'was about 1 GB after install and grew by about 33 MB per course (15 lectures); two systems A and B built from ' +
      'the same base with 20 courses each (about 1.8 GB each) needed 2.6 GB of transfer instead of 3.6 GB because the ' +
      'common base went once. This run replays it:',
    '',
    `- **Workload** (\`bench/dr/workload.ts\`, no container is run): a base layer of ${w.packages} real Debian 12 ` +
      `packages (\`bench/dr/packages-${w.scale}.txt\`: Apache, PHP 8.2 and the rest of the stack, downloaded with ` +
      `\`apt-get download\`, unpacked with \`dpkg-deb -x\`, tarred deterministically): ${MB(w.baseUnpacked)} MB unpacked, ` +
      `${MB(w.baseSize)} MB gzipped; a config layer per system (a few KB); one layer per course of 15 incompressible ` +
      `lectures, ${MB(w.courseBytes)} MB, derived from a seed. Image \`cNN\` = base + config + courses 1..NN; the same ` +
      'packages and seeds always give the same digests.',
    `- **Replay** (\`bench/dr/replay.ts\`): host A pushes c00..c${w.courses} to \`dr/moodle-${sysA}\`, then host B, ` +
      `another machine (a fresh ${results.client} cache), pushes its own c00..c${w.courses} to \`dr/moodle-${sysB}\`; ` +
      'then the recovery site, a clean client, pulls the latest image of each system (fail-over).',
    '- **Bytes sent**: request body bytes of PATCH/PUT/POST under `/v2/`, counted by the same small HTTP proxy on ' +
      '127.0.0.1 in front of every registry (`bench/dr/proxy.ts`); upload bytes are attributed to the digest they ' +
      "commit, which gives B's base bytes.",
    '- **Storage**: every file (filesystem) or object (bucket, `listObjectsV2`) of the registry after each push; ' +
      '"blob bytes" are the blob contents only (dr-registry: `data/`; Distribution: `blobs/**/data`), compared with the ' +
      'distinct blob bytes pushed so far ("unique").',
    `- **Beside the replay**, on the same running registry: one ${results.micro.blobBytes >= 2 ** 30 ? `${results.micro.blobBytes / 2 ** 30} GiB` : `${MB(results.micro.blobBytes)} MB`} ` +
      'blob pushed (one streamed chunked PATCH, as docker does) and pulled; manifest GETs by tag with ' +
      `\`autocannon\` (${results.micro.connections} connections, ${results.micro.loadSeconds} s); peak RSS of the registry ` +
      'process over the whole run (VmHWM). Ratios are to Distribution on the same store, measured in the same run.',
    '',
    '## Machine and versions',
    '',
    table(['', ''], [
      ['date', env.date],
      ['machine', `${env.cpu}, ${env.cores} cores, ${env.memoryGiB} GiB RAM, ${env.os}, Linux ${env.kernel}`],
      ...Object.entries(env.versions).map(([k, v]) => [k, v]),
    ]),
    '',
    'Every registry and Swift run on this one machine, on loopback, like the study (everything on one host).',
    '',
    '## Settings',
    '',
    table(['registry', 'settings', 'finished', 'load average at start'], targets.map((t) => [t.label, t.settings, t.finishedAt.slice(11, 19), (t.loadBefore ?? NaN).toFixed(2)])),
    '',
  ];
  if (missing.length) {
    lines.push(`Not measured in this run: ${missing.map((m) => TARGET_LABELS[m]).join('; ')}.`, '');
  }
  lines.push(
    '## The study, replayed',
    '',
    table(
      [
        'registry',
        `${sysA.toUpperCase()} sent GB`,
        `${sysB.toUpperCase()} sent GB`,
        `${sysB.toUpperCase()} base sent MB`,
        'total sent GB',
        `${sysA.toUpperCase()} push s (sum)`,
        `${sysB.toUpperCase()} push s (sum)`,
        'stored GB',
        'blob bytes / unique',
        'fail-over pull s (A / B)',
      ],
      summaryRows(results),
    ),
    '',
  );
  if (finalImages.length === 2) {
    const whole = sum(finalImages.map((p) => p.imageSize));
    const unique = targets[0]!.replay.pushes.at(-1)!.uniqueBytes;
    lines.push(
      `The final images are ${GB(finalImages[0]!.imageSize)} GB (A) and ${GB(finalImages[1]!.imageSize)} GB (B) as pushed ` +
        `(${GB(finalImages[0]!.unpackedSize)} and ${GB(finalImages[1]!.unpackedSize)} GB unpacked): ${GB(whole)} GB if each ` +
        `went whole, ${GB(unique)} GB of distinct content (the study's 3.6 GB against 2.6 GB).`,
    );
    if (ours && dist) {
      lines.push(
        `On the filesystem, dr-registry received ${GB(totalSent(ours))} GB for all ${ours.replay.pushes.length} pushes ` +
          `and Distribution ${GB(totalSent(dist))} GB: host B sent ${GB(bSent(ours))} GB to dr-registry against ` +
          `${GB(bSent(dist))} GB to Distribution, because a fresh client cannot know it may mount the base from ` +
          `\`dr/moodle-${sysA}\`, and Distribution answers its HEAD with 404 while dr-registry (dedup.linkExistingOnHead) links the ` +
          'base and answers 200. Both store the base once.',
      );
    }
    lines.push('');
  }
  lines.push(
    `![Image size and registry storage vs courses](benchmarks/${names.sizes})`,
    '',
    `![Push time vs courses](benchmarks/${names.times})`,
    '',
    `![Bytes sent, cumulated](benchmarks/${names.sent})`,
    '',
    'Solid lines: system A; dashed: system B (the second host).',
    '',
    '## Throughput, load and memory',
    '',
    microTable(results),
    '',
    'In parentheses: dr-registry / Distribution on the same store in this run (above 1 is better for MiB/s and req/s, ' +
      'below 1 is better for p99 and RSS). dr-registry flushes every object to disk before it becomes visible ' +
      '(`storage.filesystem.fsync`, default on); Distribution does not.',
    '',
    '## Every push',
    '',
  );
  for (const sys of w.systems) {
    lines.push(`### System ${sys.toUpperCase()} (\`dr/moodle-${sys}\`)`, '', pushTable(results, sys), '');
  }
  lines.push(
    '## Fail-over pulls',
    '',
    table(
      ['registry', ...w.systems.flatMap((sys) => [`${sys.toUpperCase()} c${w.courses} s`, `${sys.toUpperCase()} MB received`])],
      targets.map((t) => [t.label, ...w.systems.flatMap((sys) => {
        const p = t.replay.pulls.find((x) => x.system === sys);
        if (!p) return ['n/a', 'n/a'];
        // Distribution's S3 driver answers blob GETs with a redirect to the store (its default).
        const redirected = t.target.startsWith('dist') && t.target !== 'dist-fs' && p.received < w.baseSize / 100;
        return [p.seconds.toFixed(2), redirected ? `${MB(p.received)} (blobs redirected to Swift)` : MB(p.received)];
      })]),
    ),
    '',
    'Received bytes are counted at the proxy. Distribution on S3 redirects blob GETs to the object store by default, so ' +
      'its layers go from Swift to the client directly and are not counted; dr-registry serves them itself ' +
      '(`storage.s3.redirect` is off by default).',
    '',
    'MB are 10^6 bytes, GB 10^9 bytes, MiB 2^20 bytes.',
    '',
  );
  await writeFile(file, lines.join('\n'));
}
