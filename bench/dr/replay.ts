// The study replayed against one registry: host A pushes its image after each course (c00..cNN) to
// dr/moodle-a, then host B (another machine: a fresh client cache) does the same to dr/moodle-b;
// then the recovery site, a clean client, pulls the latest image of each system. Clients talk to
// the registry through the counting proxy; the store is measured after every push.
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { freshHost, type ClientKind } from './hosts.js';
import { startCountingProxy } from './proxy.js';
import type { StoreUsage } from './targets.js';
import { uniqueBlobs, type BuiltImage, type Workload } from './workload.js';
import { timed } from '../lib.js';

export interface PushRecord {
  system: string;
  courses: number;
  /** Bytes a push of the whole image would send (manifest, config, compressed layers). */
  imageSize: number;
  /** Uncompressed size of the image (what `docker images` shows). */
  unpackedSize: number;
  /** Compressed bytes this image adds to the previous one of the same system. */
  newLayerBytes: number;
  /** Request body bytes that reached the registry. */
  sent: number;
  /** Of those, bytes of the shared base layer. */
  sentBase: number;
  seconds: number;
  /** What the store holds after the push. */
  stored: StoreUsage;
  /** Distinct blob bytes pushed so far (all systems): what a perfect store holds. */
  uniqueBytes: number;
}

export interface PullRecord {
  system: string;
  courses: number;
  seconds: number;
  /** Response body bytes the client received. */
  received: number;
}

export interface ReplayResult {
  client: ClientKind;
  pushes: PushRecord[];
  pulls: PullRecord[];
}

export const repoOf = (system: string) => `dr/moodle-${system}`;
export const tagOf = (courses: number) => `c${String(courses).padStart(2, '0')}`;

export async function replay(
  workload: Workload,
  registryUrl: string,
  usage: () => Promise<StoreUsage>,
  opts: { client: ClientKind; work: string; log?: (msg: string) => void },
): Promise<ReplayResult> {
  const log = opts.log ?? (() => {});
  const work = await mkdtemp(path.join(opts.work, 'replay-'));
  const proxy = await startCountingProxy(registryUrl);
  const pushed: BuiltImage[] = [];
  const result: ReplayResult = { client: opts.client, pushes: [], pulls: [] };
  try {
    for (const system of workload.scale.systems) {
      const host = await freshHost(opts.client, workload.layout, work);
      try {
        let previous: BuiltImage | undefined;
        for (let c = 0; c <= workload.scale.courses; c++) {
          const image = workload.image(system, c);
          const [repo, tag] = [repoOf(system), tagOf(c)];
          await host.prepare(image.ref, proxy.hostPort, repo, tag);
          proxy.take();
          const { seconds } = await timed(() => host.push(image.ref, proxy.hostPort, repo, tag));
          const traffic = proxy.take();
          pushed.push(image);
          const stored = await usage();
          const unique = [...uniqueBlobs(pushed).values()].reduce((n, s) => n + s, 0);
          const before = new Set(previous?.layers.map((l) => l.digest));
          const record: PushRecord = {
            system,
            courses: c,
            imageSize: image.pushedSize,
            unpackedSize: image.unpackedSize,
            newLayerBytes: image.layers.filter((l) => !before.has(l.digest)).reduce((n, l) => n + l.size, 0),
            sent: traffic.sent,
            sentBase: traffic.sentByDigest.get(workload.base.digest) ?? 0,
            seconds,
            stored,
            uniqueBytes: unique,
          };
          result.pushes.push(record);
          log(`push ${repo}:${tag}: ${(record.sent / 1e6).toFixed(1)} MB sent in ${seconds.toFixed(2)} s, store ${(stored.total / 1e6).toFixed(1)} MB`);
          previous = image;
        }
      } finally {
        await host.close();
      }
    }
    // Fail over: a clean client at the recovery site pulls the latest point of every system.
    const recovery = await freshHost(opts.client, workload.layout, work);
    try {
      for (const system of workload.scale.systems) {
        proxy.take();
        const { seconds } = await timed(() => recovery.pull(proxy.hostPort, repoOf(system), tagOf(workload.scale.courses)));
        const traffic = proxy.take();
        result.pulls.push({ system, courses: workload.scale.courses, seconds, received: traffic.received });
        log(`pull ${repoOf(system)}:${tagOf(workload.scale.courses)}: ${(traffic.received / 1e6).toFixed(1)} MB in ${seconds.toFixed(2)} s`);
      }
    } finally {
      await recovery.close();
    }
  } finally {
    await proxy.close();
    await rm(work, { recursive: true, force: true });
  }
  return result;
}
