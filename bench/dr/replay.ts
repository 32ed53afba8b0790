// The study replayed against registries side by side: host A pushes its image after each course
// (c00..cNN) to dr/moodle-a, then host B (another machine: a fresh client cache) does the same to
// dr/moodle-b; then the recovery site, a clean client, pulls the latest image of each system.
// Clients talk to each registry through a counting proxy; the store is measured after every push.
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { freshHost, type ClientKind, type Host } from './hosts.js';
import { startCountingProxy, type CountingProxy } from './proxy.js';
import type { StoreUsage } from './targets.js';
import { createHash } from 'node:crypto';
import type { Workload } from './workload.js';
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

/** A registry taking part in the replay. */
export interface Participant {
  name: string;
  url: string;
  usage(): Promise<StoreUsage>;
}

interface Lane {
  participant: Participant;
  proxy: CountingProxy;
  /** Sizes of the distinct blobs pushed so far, as the registry holds them. */
  pushed: Map<string, number>;
  result: ReplayResult;
}

/**
 * Replays the study against every participant, interleaved: each push (and each pull) is made to
 * one registry after the other, in alternating order, so whatever else the machine does weighs on
 * all of them alike. Each registry has its own hosts (clients with their own caches) and proxy.
 */
export async function replay(
  workload: Workload,
  participants: Participant[],
  opts: { client: ClientKind; work: string; log?: (msg: string) => void },
): Promise<Map<string, ReplayResult>> {
  const log = opts.log ?? (() => {});
  const work = await mkdtemp(path.join(opts.work, 'replay-'));
  const lanes: Lane[] = [];
  const alternate = (i: number) => (i % 2 === 0 ? lanes : [...lanes].reverse());
  const hostsFor = () => Promise.all(lanes.map(() => freshHost(opts.client, workload.layout, work)));
  try {
    for (const participant of participants) {
      lanes.push({ participant, proxy: await startCountingProxy(participant.url), pushed: new Map(), result: { client: opts.client, pushes: [], pulls: [] } });
    }
    for (const system of workload.scale.systems) {
      const hosts = await hostsFor();
      try {
        for (let c = 0; c <= workload.scale.courses; c++) {
          for (const lane of alternate(c)) await pushOne(workload, lane, hosts[lanes.indexOf(lane)]!, system, c, log);
        }
      } finally {
        for (const h of hosts) await h.close();
      }
    }
    // Fail over: a clean client at the recovery site pulls the latest point of every system.
    const recovery = await hostsFor();
    try {
      for (const [i, system] of workload.scale.systems.entries()) {
        for (const lane of alternate(i)) {
          const { proxy, result, participant } = lane;
          proxy.take();
          const { seconds } = await timed(() => recovery[lanes.indexOf(lane)]!.pull(proxy.hostPort, repoOf(system), tagOf(workload.scale.courses)));
          const received = proxy.take().received;
          result.pulls.push({ system, courses: workload.scale.courses, seconds, received });
          log(`[${participant.name}] pull ${repoOf(system)}:${tagOf(workload.scale.courses)}: ${(received / 1e6).toFixed(1)} MB in ${seconds.toFixed(2)} s`);
        }
      }
    } finally {
      for (const h of recovery) await h.close();
    }
  } finally {
    for (const lane of lanes) await lane.proxy.close();
    await rm(work, { recursive: true, force: true });
  }
  return new Map(lanes.map((l) => [l.participant.name, l.result]));
}

async function pushOne(workload: Workload, lane: Lane, host: Host, system: string, c: number, log: (msg: string) => void): Promise<void> {
  const { proxy, participant } = lane;
  const image = workload.image(system, c);
  const [repo, tag] = [repoOf(system), tagOf(c)];
  await host.prepare(image.ref, proxy.hostPort, repo, tag);
  proxy.take();
  const { seconds } = await timed(() => host.push(image.ref, proxy.hostPort, repo, tag));
  const traffic = proxy.take();
  // What was pushed, as the registry holds it: docker recompresses layers, so its digests are not
  // the layout's. The base is the first layer.
  const blobs = await pushedBlobs(participant.url, repo, tag);
  for (const [digest, size] of blobs) lane.pushed.set(digest, size);
  const stored = await participant.usage();
  const before = new Set(c > 0 ? workload.image(system, c - 1).layers.map((l) => l.digest) : []);
  const record: PushRecord = {
    system,
    courses: c,
    imageSize: image.pushedSize,
    unpackedSize: image.unpackedSize,
    newLayerBytes: image.layers.filter((l) => !before.has(l.digest)).reduce((n, l) => n + l.size, 0),
    sent: traffic.sent,
    sentBase: traffic.sentByDigest.get([...blobs.keys()][2]!) ?? 0,
    seconds,
    stored,
    uniqueBytes: [...lane.pushed.values()].reduce((n, s) => n + s, 0),
  };
  lane.result.pushes.push(record);
  log(`[${participant.name}] push ${repo}:${tag}: ${(record.sent / 1e6).toFixed(1)} MB sent in ${seconds.toFixed(2)} s, store ${(stored.total / 1e6).toFixed(1)} MB`);
}

const ACCEPT = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');

/** The manifest, config and layers of repo:tag with their sizes, in that order (read directly, not counted). */
async function pushedBlobs(registryUrl: string, repo: string, tag: string): Promise<Map<string, number>> {
  const res = await fetch(`${registryUrl}/v2/${repo}/manifests/${tag}`, { headers: { Accept: ACCEPT } });
  if (res.status !== 200) throw new Error(`GET manifest ${repo}:${tag}: ${res.status}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  const manifest = JSON.parse(bytes.toString()) as { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number }> };
  return new Map([
    [`sha256:${createHash('sha256').update(bytes).digest('hex')}`, bytes.length],
    ...[manifest.config, ...manifest.layers].map((d) => [d.digest, d.size] as [string, number]),
  ]);
}
