// Registries measured end to end: start them on empty stores, replay the study, then the blob and
// manifest-load measurements, read their peak memory, stop them and empty their stores.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { peakRssMiB, timed } from '../lib.js';
import type { DataSet } from './data.js';
import type { ClientKind } from './hosts.js';
import { blobThroughput, manifestLoad, type BlobResult, type LoadResult } from './micro.js';
import { replay, repoOf, tagOf, type ReplayResult } from './replay.js';
import { startTarget, TARGET_LABELS, type RunningTarget, type StoreUsage, type TargetName } from './targets.js';
import type { Workload } from './workload.js';

const run = promisify(execFile);

export interface TargetResult {
  target: TargetName;
  label: string;
  settings: string;
  replay: ReplayResult;
  /** What the store holds at the end (the replay's images; the blob test's repository excluded). */
  stored: StoreUsage;
  blob?: BlobResult;
  load?: LoadResult;
  /** Peak resident memory of the registry process over the whole run (VmHWM). */
  peakRssMiB: number;
  seconds: number;
  finishedAt: string;
  /** Mean of the machine's 1-minute load average during the run (other work disturbs timings). */
  loadAverage: number;
}

export interface MicroOptions {
  /** Size of the blob pushed and pulled; 0 skips it. */
  blobBytes: number;
  /** Blob push and pull repeated this many times; the best is kept. */
  rounds: number;
  /** Seconds of manifest load; 0 skips it. */
  loadSeconds: number;
  connections: number;
}

/**
 * Runs the targets of one group (e.g. dr-registry and Distribution on the same store) side by
 * side: all started on empty stores, the replay interleaved between them, then the blob (best of
 * `micro.rounds`) and load measurements one registry after the other, in alternating order.
 */
export async function runGroup(
  names: TargetName[],
  workload: Workload,
  opts: { client: ClientKind; work: string; micro: MicroOptions; data?: DataSet; fromSource?: boolean; swiftEndpoint?: string; log?: (msg: string) => void },
): Promise<TargetResult[]> {
  const log = opts.log ?? (() => {});
  const loads: number[] = [os.loadavg()[0]!];
  const sampler = setInterval(() => loads.push(os.loadavg()[0]!), 5000);
  const targets: RunningTarget[] = [];
  const t0 = process.hrtime.bigint();
  try {
    for (const name of names) targets.push(await startTarget(name, { fromSource: opts.fromSource, swiftEndpoint: opts.swiftEndpoint }));
    const replayed = await replay(workload, targets, { client: opts.client, work: opts.work, data: opts.data, fromSource: opts.fromSource, log });
    const stored = await Promise.all(targets.map((t) => t.usage()));
    const order = (round: number) => (round % 2 === 0 ? targets : [...targets].reverse());
    const blobs = new Map<TargetName, BlobResult>();
    for (let round = 0; opts.micro.blobBytes > 0 && round < opts.micro.rounds; round++) {
      for (const t of order(round)) {
        const r = await blobThroughput(t.url, 'bench/blob', opts.micro.blobBytes, round);
        log(`[${t.name}] blob of ${r.bytes} bytes: push ${r.pushSeconds.toFixed(2)} s, pull ${r.pullSeconds.toFixed(2)} s`);
        const best = blobs.get(t.name);
        blobs.set(t.name, best ? { bytes: r.bytes, pushSeconds: Math.min(best.pushSeconds, r.pushSeconds), pullSeconds: Math.min(best.pullSeconds, r.pullSeconds) } : r);
      }
    }
    const loadResults = new Map<TargetName, LoadResult>();
    for (const t of opts.micro.loadSeconds > 0 ? targets : []) {
      const r = await manifestLoad(t.url, repoOf(workload.scale.systems[0]!), tagOf(workload.scale.courses), { connections: opts.micro.connections, seconds: opts.micro.loadSeconds });
      log(`[${t.name}] manifest GET: ${r.rps.toFixed(0)} req/s, p99 ${r.p99ms} ms`);
      loadResults.set(t.name, r);
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const loadAverage = loads.reduce((a, b) => a + b, 0) / loads.length;
    return await Promise.all(
      targets.map(async (t, i): Promise<TargetResult> => ({
        target: t.name,
        label: TARGET_LABELS[t.name],
        settings: t.settings,
        replay: replayed.get(t.name)!,
        stored: stored[i]!,
        ...(blobs.has(t.name) ? { blob: blobs.get(t.name)! } : {}),
        ...(loadResults.has(t.name) ? { load: loadResults.get(t.name)! } : {}),
        peakRssMiB: await peakRssMiB(t.pid),
        seconds,
        finishedAt: new Date().toISOString(),
        loadAverage,
      })),
    );
  } finally {
    clearInterval(sampler);
    for (const t of targets) await t.stop();
  }
}

export interface Environment {
  date: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  os: string;
  versions: Record<string, string>;
}

async function version(cmd: string, args: string[], pattern?: RegExp): Promise<string> {
  try {
    const { stdout, stderr } = await run(cmd, args, { timeout: 10_000 });
    const text = (stdout || stderr).trim();
    return (pattern ? pattern.exec(text)?.[1] : text.split('\n')[0]) ?? text;
  } catch {
    return 'not found';
  }
}

/** The machine and the versions of everything measured, for the report's header. */
export async function describeEnvironment(): Promise<Environment> {
  const root = path.resolve(import.meta.dirname, '../..');
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string };
  const commit = await version('git', ['-C', root, 'rev-parse', '--short', 'HEAD']);
  const osRelease = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const dpkg = (p: string) => version('dpkg-query', ['-W', '-f=${Version}', p]);
  return {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    os: /PRETTY_NAME="([^"]+)"/.exec(osRelease)?.[1] ?? 'unknown',
    versions: {
      'dr-registry': `${pkg.version} (${commit})`,
      node: process.version,
      'CNCF Distribution': await dpkg('docker-registry'),
      skopeo: await dpkg('skopeo'),
      'docker (daemon)': await dpkg('docker.io'),
      'OpenStack Swift': await dpkg('swift'),
      'GNU tar': await version('tar', ['--version'], /tar\) (\S+)/),
    },
  };
}
