// One target measured end to end: start the registry on an empty store, replay the study, then the
// blob and manifest-load measurements, read its peak memory, stop it and empty its store.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { peakRssMiB, timed } from '../lib.js';
import type { ClientKind } from './hosts.js';
import { blobThroughput, manifestLoad, type BlobResult, type LoadResult } from './micro.js';
import { replay, repoOf, tagOf, type ReplayResult } from './replay.js';
import { startTarget, TARGET_LABELS, type StoreUsage, type TargetName } from './targets.js';
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
  /** The machine's 1-minute load average when the target started (other work disturbs timings). */
  loadBefore: number;
}

export interface MicroOptions {
  /** Size of the blob pushed and pulled; 0 skips it. */
  blobBytes: number;
  /** Seconds of manifest load; 0 skips it. */
  loadSeconds: number;
  connections: number;
}

export async function runTarget(
  name: TargetName,
  workload: Workload,
  opts: { client: ClientKind; work: string; micro: MicroOptions; fromSource?: boolean; swiftEndpoint?: string; log?: (msg: string) => void },
): Promise<TargetResult> {
  const log = (msg: string) => opts.log?.(`[${name}] ${msg}`);
  const loadBefore = os.loadavg()[0]!;
  const target = await startTarget(name, { fromSource: opts.fromSource, swiftEndpoint: opts.swiftEndpoint });
  try {
    const { seconds, value } = await timed(async () => {
      const replayed = await replay(workload, target.url, target.usage, { client: opts.client, work: opts.work, log });
      const stored = await target.usage();
      let blob: BlobResult | undefined;
      let load: LoadResult | undefined;
      if (opts.micro.blobBytes > 0) {
        blob = await blobThroughput(target.url, 'bench/blob', opts.micro.blobBytes);
        log(`blob of ${opts.micro.blobBytes} bytes: push ${blob.pushSeconds.toFixed(2)} s, pull ${blob.pullSeconds.toFixed(2)} s`);
      }
      if (opts.micro.loadSeconds > 0) {
        const last = workload.scale.courses;
        load = await manifestLoad(target.url, repoOf(workload.scale.systems[0]!), tagOf(last), { connections: opts.micro.connections, seconds: opts.micro.loadSeconds });
        log(`manifest GET: ${load.rps.toFixed(0)} req/s, p99 ${load.p99ms} ms`);
      }
      return { replayed, stored, blob, load, rss: await peakRssMiB(target.pid) };
    });
    return {
      target: name,
      label: TARGET_LABELS[name],
      settings: target.settings,
      replay: value.replayed,
      stored: value.stored,
      ...(value.blob ? { blob: value.blob } : {}),
      ...(value.load ? { load: value.load } : {}),
      peakRssMiB: value.rss,
      seconds,
      finishedAt: new Date().toISOString(),
      loadBefore,
    };
  } finally {
    await target.stop();
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
