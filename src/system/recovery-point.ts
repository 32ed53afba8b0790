// Whole-system recovery points: for a set of containers, each container committed to an image
// and each of its named volumes snapshotted, all pushed to one repository and listed in one OCI
// index (artifactType application/vnd.dr-registry.system.v1), tagged. Restore pulls the images,
// recreates the volumes with their data, and prints (or creates) the containers. docs/system.md.
import type { Credentials } from '../client/credentials.js';
import type { ContainerInfo, DockerEngine } from '../client/docker-engine.js';
import type { RegistryClient } from '../client/registry-client.js';
import { ARTIFACT_TYPE as VOLUME_ARTIFACT_TYPE, OCI_INDEX, SIZE_ANNOTATION } from '../volumes/format.js';
import { pullVolume } from '../volumes/pull.js';
import { pushVolume, type PushResult } from '../volumes/push.js';

export const SYSTEM_ARTIFACT_TYPE = 'application/vnd.dr-registry.system.v1';
export const A_KIND = 'io.dr-registry.kind';
export const A_CONTAINER = 'io.dr-registry.container';
export const A_CONTAINER_CONFIG = 'io.dr-registry.container.config';
export const A_VOLUME = 'io.dr-registry.volume';
export const A_MOUNT = 'io.dr-registry.mount';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** What `docker create` needs to make the container again (volumes mounted by name). */
export interface ContainerSpec {
  name: string;
  image: string;
  cmd?: string[] | null;
  entrypoint?: string[] | null;
  env?: string[] | null;
  workingDir?: string;
  user?: string;
  labels?: Record<string, string> | null;
  volumes: { name: string; destination: string; readOnly: boolean }[];
}

export interface BackupOptions {
  engine: DockerEngine;
  client: RegistryClient;
  registry: string;
  repo: string;
  tag: string;
  containers: string[];
  credentials?: Credentials;
  onStep?: (message: string) => void;
}

export interface BackupResult {
  digest: string;
  reference: string;
  containers: { name: string; image: string; volumes: { name: string; mount: string; digest: string; totalBytes: number; sentBytes: number }[] }[];
  sentBytes: number;
  seconds: number;
}

const safeTag = (s: string) => s.replace(/[^\w.-]/g, '_').slice(0, 60);

function specOf(info: ContainerInfo): ContainerSpec {
  return {
    name: info.Name.replace(/^\//, ''),
    image: info.Config.Image,
    cmd: info.Config.Cmd,
    entrypoint: info.Config.Entrypoint,
    env: info.Config.Env,
    workingDir: info.Config.WorkingDir,
    user: info.Config.User,
    labels: info.Config.Labels,
    // In mount-path order: the daemon lists mounts in no fixed order.
    volumes: info.Mounts.filter((m) => m.Type === 'volume' && m.Name)
      .map((m) => ({ name: m.Name!, destination: m.Destination, readOnly: !m.RW }))
      .sort((a, b) => (a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : 0)),
  };
}

export async function backupSystem(options: BackupOptions): Promise<BackupResult> {
  const started = performance.now();
  const { engine, client, registry, repo, tag } = options;
  const sentAtStart = client.bytesSent;
  const manifests: Descriptor[] = [];
  const out: BackupResult['containers'] = [];
  for (const name of options.containers) {
    const info = await engine.container(name);
    const spec = specOf(info);
    // The container's filesystem (volumes excluded) as an image, pushed by the daemon.
    const imageTag = safeTag(`${tag}-container-${spec.name}`);
    options.onStep?.(`commit ${spec.name}`);
    await engine.commit(info.Id, `${registry}/${repo}`, imageTag);
    options.onStep?.(`push image of ${spec.name}`);
    await engine.push(`${registry}/${repo}`, imageTag, options.credentials);
    const image = await client.getManifest(repo, imageTag);
    if (!image) throw new Error(`the image of ${spec.name} was pushed but ${repo}:${imageTag} is not in the registry`);
    manifests.push({
      mediaType: image.mediaType,
      digest: image.digest,
      size: image.bytes.length,
      annotations: { [A_KIND]: 'image', [A_CONTAINER]: spec.name, [A_CONTAINER_CONFIG]: JSON.stringify(spec) },
    });
    const volumes: BackupResult['containers'][number]['volumes'] = [];
    for (const v of spec.volumes) {
      const volume = await engine.volume(v.name);
      if (!volume) throw new Error(`volume ${v.name} of ${spec.name} not found`);
      options.onStep?.(`snapshot volume ${v.name}`);
      const pushed: PushResult = await pushVolume({ client, repo, tag: safeTag(`${tag}-volume-${v.name}`), dir: volume.Mountpoint, sourceLabel: `docker:${v.name}` });
      const m = (await client.getManifest(repo, pushed.digest))!;
      manifests.push({
        mediaType: m.mediaType,
        digest: pushed.digest,
        size: m.bytes.length,
        artifactType: VOLUME_ARTIFACT_TYPE,
        annotations: { [A_KIND]: 'volume', [A_CONTAINER]: spec.name, [A_VOLUME]: v.name, [A_MOUNT]: v.destination, [SIZE_ANNOTATION]: String(pushed.totalBytes) },
      });
      volumes.push({ name: v.name, mount: v.destination, digest: pushed.digest, totalBytes: pushed.totalBytes, sentBytes: pushed.sentBytes });
    }
    out.push({ name: spec.name, image: image.digest, volumes });
  }
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    artifactType: SYSTEM_ARTIFACT_TYPE,
    manifests,
    annotations: {
      'org.opencontainers.image.created': new Date().toISOString(),
      [SIZE_ANNOTATION]: String(out.reduce((n, c) => n + c.volumes.reduce((m, v) => m + v.totalBytes, 0), 0)),
    },
  };
  const digest = await client.putManifest(repo, tag, Buffer.from(JSON.stringify(index)), OCI_INDEX);
  return { digest, reference: `${registry}/${repo}:${tag}`, containers: out, sentBytes: client.bytesSent - sentAtStart, seconds: (performance.now() - started) / 1000 };
}

export interface RestoreOptions {
  engine: DockerEngine;
  client: RegistryClient;
  registry: string;
  repo: string;
  reference: string;
  /** Create the containers (else only print the docker create commands). */
  create?: boolean;
  credentials?: Credentials;
  onStep?: (message: string) => void;
}

export interface RestoreResult {
  digest: string;
  containers: { name: string; image: string; created: boolean; command: string }[];
  volumes: { name: string; digest: string; files: number; totalBytes: number }[];
  seconds: number;
}

const VOLUME_NAME = /^[A-Za-z0-9][\w.-]*$/;
const CONTAINER_NAME = /^[A-Za-z0-9][\w.-]*$/;

/** A container spec from a recovery point, checked: named volumes only, absolute mount points. */
function parseSpec(text: string | undefined): ContainerSpec {
  let spec: ContainerSpec;
  try {
    spec = JSON.parse(text ?? '') as ContainerSpec;
  } catch {
    throw new Error('recovery point holds an unreadable container spec');
  }
  if (typeof spec !== 'object' || spec === null || typeof spec.name !== 'string' || !CONTAINER_NAME.test(spec.name)) {
    throw new Error(`recovery point names an invalid container ${JSON.stringify((spec as { name?: unknown } | null)?.name)}`);
  }
  if (!Array.isArray(spec.volumes)) throw new Error(`recovery point: container ${spec.name} has no volume list`);
  for (const v of spec.volumes) {
    if (typeof v?.name !== 'string' || !VOLUME_NAME.test(v.name)) throw new Error(`recovery point names an invalid volume ${JSON.stringify(v?.name)} for ${spec.name}`);
    if (typeof v.destination !== 'string' || !/^\/[^:\0\n]*$/.test(v.destination) || v.destination.split('/').includes('..')) {
      throw new Error(`recovery point names an invalid mount ${JSON.stringify(v.destination)} for ${spec.name}`);
    }
  }
  return spec;
}

const shellQuote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export async function restoreSystem(options: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  const { engine, client, registry, repo } = options;
  const top = await client.getManifest(repo, options.reference);
  if (!top) throw new Error(`${repo}:${options.reference} not found`);
  const index = JSON.parse(top.bytes.toString('utf8')) as { artifactType?: string; manifests?: Descriptor[] };
  if (index.artifactType !== SYSTEM_ARTIFACT_TYPE) throw new Error(`${repo}:${options.reference} is not a system recovery point (artifactType ${index.artifactType ?? 'none'})`);
  const entries = index.manifests ?? [];
  const result: RestoreResult = { digest: top.digest, containers: [], volumes: [], seconds: 0 };
  // Checks first, before anything is pulled or created: a hostile recovery point must not turn a
  // bind into a host path (a "volume" named '/' would mount the host's root into the container).
  const specs = new Map<Descriptor, ContainerSpec>();
  for (const m of entries.filter((e) => e.annotations?.[A_KIND] === 'image')) {
    const spec = parseSpec(m.annotations?.[A_CONTAINER_CONFIG]);
    specs.set(m, spec);
  }
  // Volumes first: the containers mount them by name.
  for (const m of entries.filter((e) => e.annotations?.[A_KIND] === 'volume')) {
    const name = m.annotations![A_VOLUME]!;
    if (typeof name !== 'string' || !VOLUME_NAME.test(name)) throw new Error(`recovery point names an invalid volume ${JSON.stringify(name)}`);
    let volume = await engine.volume(name);
    volume ??= await engine.createVolume(name);
    options.onStep?.(`restore volume ${name}`);
    const pulled = await pullVolume({ client, repo, reference: m.digest, dest: volume.Mountpoint });
    result.volumes.push({ name, digest: m.digest, files: pulled.files, totalBytes: pulled.totalBytes });
  }
  for (const [m, spec] of specs) {
    const image = `${registry}/${repo}@${m.digest}`;
    options.onStep?.(`pull image of ${spec.name}`);
    await engine.pull(`${registry}/${repo}`, m.digest, options.credentials);
    const binds = spec.volumes.map((v) => `${v.name}:${v.destination}${v.readOnly ? ':ro' : ''}`);
    const command = [
      'docker create',
      `--name ${shellQuote(spec.name)}`,
      ...binds.map((b) => `-v ${shellQuote(b)}`),
      ...(spec.env ?? []).map((e) => `-e ${shellQuote(e)}`),
      ...(spec.workingDir ? [`-w ${shellQuote(spec.workingDir)}`] : []),
      ...(spec.user ? [`-u ${shellQuote(spec.user)}`] : []),
      ...(spec.entrypoint?.length ? [`--entrypoint ${shellQuote(spec.entrypoint[0]!)}`] : []),
      shellQuote(image),
      ...(spec.entrypoint?.slice(1) ?? []).map(shellQuote),
      ...(spec.cmd ?? []).map(shellQuote),
    ].join(' ');
    let created = false;
    if (options.create) {
      await engine.createContainer(spec.name, {
        Image: image,
        Cmd: spec.cmd ?? undefined,
        Entrypoint: spec.entrypoint ?? undefined,
        Env: spec.env ?? undefined,
        WorkingDir: spec.workingDir || undefined,
        User: spec.user || undefined,
        Labels: spec.labels ?? undefined,
        HostConfig: { Binds: binds },
      });
      created = true;
    }
    result.containers.push({ name: spec.name, image, created, command });
  }
  result.seconds = (performance.now() - started) / 1000;
  return result;
}
