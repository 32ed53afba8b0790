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
import { measured, type CpuSplit } from './cpu.js';
import { copyTree, type DataSet } from './data.js';
import { volumeCli } from './volume-cli.js';

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
  /** CPU seconds of the client, the registry and the proxy during the push (bench/dr/cpu.ts). */
  clientCpuSeconds: number;
  registryCpuSeconds: number;
  proxyCpuSeconds: number;
  /** What the store holds after the push. */
  stored: StoreUsage;
  /** Distinct blob bytes pushed so far (all systems): what a perfect store holds. */
  uniqueBytes: number;
  /** The data volume's snapshot pushed after the image (when the run has data volumes). */
  data?: DataPush;
}

export interface DataPush {
  /** Logical bytes of the volume and files in it. */
  volumeBytes: number;
  files: number;
  /** Request body bytes that reached the registry (snapshot push and the cNN tag). */
  sent: number;
  /** What the CLI says it sent. */
  cliSent: number;
  /** Files and bytes the CLI read (unchanged files are not read again). */
  filesRead: number;
  bytesRead: number;
  chunks: number;
  newChunks: number;
  /** `volume push` (the process, start to exit) and the tag. */
  seconds: number;
  /** CPU seconds of the `volume push` process. */
  cpuSeconds: number;
  /** CPU seconds of the registry during the volume push and tag. */
  registryCpuSeconds: number;
  /** What the store holds after the image and the data of this point. */
  stored: StoreUsage;
  /** Distinct blob bytes pushed so far, images and data, all systems. */
  uniqueBytes: number;
}

export interface PullRecord extends CpuSplit {
  system: string;
  courses: number;
  /** Response body bytes the client received. */
  received: number;
  /** `volume pull` of the same point's data into an empty directory. */
  data?: { seconds: number; cpuSeconds: number; registryCpuSeconds: number; received: number; volumeBytes: number };
}

export interface ReplayResult {
  client: ClientKind;
  pushes: PushRecord[];
  pulls: PullRecord[];
}

export const repoOf = (system: string) => `dr/moodle-${system}`;
export const dataRepoOf = (system: string) => `${repoOf(system)}-data`;
export const tagOf = (courses: number) => `c${String(courses).padStart(2, '0')}`;

/** A registry taking part in the replay. */
export interface Participant {
  name: string;
  url: string;
  /** The registry process, whose CPU time is read around every push and pull. */
  pid: number;
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
  opts: { client: ClientKind; work: string; data?: DataSet; fromSource?: boolean; log?: (msg: string) => void },
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
      // The host's data volume: one directory, grown course by course, pushed to every registry.
      const volume = path.join(work, `volume-${system}`);
      if (opts.data) await copyTree(opts.data.base(system), volume);
      try {
        for (let c = 0; c <= workload.scale.courses; c++) {
          if (opts.data && c > 0) await copyTree(opts.data.course(system, c), volume);
          for (const lane of alternate(c)) {
            await pushOne(workload, lane, hosts[lanes.indexOf(lane)]!, system, c, log);
            if (opts.data) await pushData(lane, volume, system, c, { home: work, fromSource: opts.fromSource }, log);
          }
        }
      } finally {
        for (const h of hosts) await h.close();
        await rm(volume, { recursive: true, force: true });
      }
    }
    // Fail over: a clean client at the recovery site pulls the latest point of every system,
    // straight from the registry: the counting proxy costs about as much CPU as the client on this
    // 2-core machine and would weigh on the time of both registries. The bytes received are
    // counted by another clean client pulling the same point through the proxy, untimed.
    const recovery = await hostsFor();
    const counting = await hostsFor();
    try {
      for (const [i, system] of workload.scale.systems.entries()) {
        for (const lane of alternate(i)) {
          const { proxy, result, participant } = lane;
          const direct = new URL(participant.url).host;
          const { value: _, ...split } = await measured(participant.pid, () => recovery[lanes.indexOf(lane)]!.pull(direct, repoOf(system), tagOf(workload.scale.courses)));
          proxy.take();
          await counting[lanes.indexOf(lane)]!.pull(proxy.hostPort, repoOf(system), tagOf(workload.scale.courses));
          const received = proxy.take().received;
          result.pulls.push({ system, courses: workload.scale.courses, ...split, received });
          log(`[${participant.name}] pull ${repoOf(system)}:${tagOf(workload.scale.courses)}: ${(received / 1e6).toFixed(1)} MB in ${split.seconds.toFixed(2)} s${cpuNote(split)}`);
          if (opts.data) {
            const dest = await mkdtemp(path.join(work, 'restored-'));
            const ref = `${proxy.hostPort}/${dataRepoOf(system)}:${tagOf(workload.scale.courses)}`;
            const pulled = await measured(participant.pid, () => volumeCli(['pull', ref, dest], { home: work, fromSource: opts.fromSource }));
            const data = { seconds: pulled.seconds, cpuSeconds: pulled.value.cpuSeconds, registryCpuSeconds: pulled.registryCpuSeconds, received: proxy.take().received, volumeBytes: pulled.value.totalBytes };
            result.pulls.at(-1)!.data = data;
            await rm(dest, { recursive: true, force: true });
            log(`[${participant.name}] volume pull ${ref}: ${(data.received / 1e6).toFixed(1)} MB in ${data.seconds.toFixed(2)} s`);
          }
        }
      }
    } finally {
      for (const h of [...recovery, ...counting]) await h.close();
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
  const { value: _, ...split } = await measured(participant.pid, () => host.push(image.ref, proxy.hostPort, repo, tag));
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
    ...split,
    stored,
    uniqueBytes: [...lane.pushed.values()].reduce((n, s) => n + s, 0),
  };
  lane.result.pushes.push(record);
  log(`[${participant.name}] push ${repo}:${tag}: ${(record.sent / 1e6).toFixed(1)} MB sent in ${split.seconds.toFixed(2)} s${cpuNote(split)}, store ${(stored.total / 1e6).toFixed(1)} MB`);
}

const cpuNote = (c: CpuSplit) => ` (CPU s: client ${c.clientCpuSeconds.toFixed(2)}, registry ${c.registryCpuSeconds.toFixed(2)}, proxy ${c.proxyCpuSeconds.toFixed(2)})`;

const ACCEPT = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/**
 * The host pushes its data volume: `volume push DIR REG/REPO-data:latest` (the moving tag is the
 * parent of the next push, so only changed files are read), then tags that snapshot `cNN` as the
 * point's own name, as `crane tag` would: GET and PUT of the manifest, through the proxy.
 */
async function pushData(lane: Lane, volume: string, system: string, c: number, cli: { home: string; fromSource?: boolean }, log: (msg: string) => void): Promise<void> {
  const { proxy, participant } = lane;
  const repo = dataRepoOf(system);
  const tag = tagOf(c);
  proxy.take();
  const { seconds, registryCpuSeconds, value: out } = await measured(participant.pid, async () => {
    const out = await volumeCli(['push', volume, `${proxy.hostPort}/${repo}:latest`], cli);
    const got = await fetch(`http://${proxy.hostPort}/v2/${repo}/manifests/latest`, { headers: { Accept: `${ACCEPT}, ${OCI_INDEX}` } });
    if (got.status !== 200) throw new Error(`GET ${repo}:latest: ${got.status}`);
    const type = got.headers.get('content-type')!;
    const put = await fetch(`http://${proxy.hostPort}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'Content-Type': type }, body: Buffer.from(await got.arrayBuffer()) });
    if (put.status !== 201) throw new Error(`PUT ${repo}:${tag}: ${put.status} ${await put.text()}`);
    return out;
  });
  const traffic = proxy.take();
  for (const [digest, size] of await snapshotBlobs(participant.url, repo, tag)) lane.pushed.set(digest, size);
  const stored = await participant.usage();
  const record = lane.result.pushes.at(-1)!;
  record.data = {
    volumeBytes: out.totalBytes,
    files: out.files,
    sent: traffic.sent,
    cliSent: out.sentBytes ?? 0,
    filesRead: out.filesRead ?? 0,
    bytesRead: out.bytesRead ?? 0,
    chunks: out.chunks ?? 0,
    newChunks: out.newChunks ?? 0,
    seconds,
    cpuSeconds: out.cpuSeconds,
    registryCpuSeconds,
    stored,
    uniqueBytes: [...lane.pushed.values()].reduce((n, s) => n + s, 0),
  };
  log(
    `[${participant.name}] volume push ${repo}:${tag}: ${(out.totalBytes / 1e6).toFixed(0)} MB, read ${((out.bytesRead ?? 0) / 1e6).toFixed(1)} MB, ` +
      `${(traffic.sent / 1e6).toFixed(1)} MB sent in ${seconds.toFixed(2)} s, store ${(stored.total / 1e6).toFixed(1)} MB`,
  );
}

/** The manifests (index and parts) and blobs of a snapshot with their sizes (read directly, not counted). */
async function snapshotBlobs(registryUrl: string, repo: string, reference: string): Promise<Map<string, number>> {
  const res = await fetch(`${registryUrl}/v2/${repo}/manifests/${reference}`, { headers: { Accept: `${ACCEPT}, ${OCI_INDEX}` } });
  if (res.status !== 200) throw new Error(`GET manifest ${repo}:${reference}: ${res.status}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  const doc = JSON.parse(bytes.toString()) as { manifests?: Array<{ digest: string }>; config?: { digest: string; size: number }; layers?: Array<{ digest: string; size: number }> };
  const out = new Map<string, number>([[`sha256:${createHash('sha256').update(bytes).digest('hex')}`, bytes.length]]);
  for (const m of doc.manifests ?? []) for (const [d, n] of await snapshotBlobs(registryUrl, repo, m.digest)) out.set(d, n);
  for (const d of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) out.set(d.digest, d.size);
  return out;
}

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
