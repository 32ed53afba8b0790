// The measurements beside the replay, on the same running registry: one large blob pushed and
// pulled (as docker streams it), and manifest GETs under concurrent load (autocannon).
import autocannon from 'autocannon';
import { deterministicStream, digestOfStream, pullBlob, pushBlob, timed } from '../lib.js';

export interface BlobResult {
  bytes: number;
  pushSeconds: number;
  pullSeconds: number;
}

export interface LoadResult {
  connections: number;
  seconds: number;
  requests: number;
  /** Mean requests per second. */
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: number;
  non2xx: number;
}

const digests = new Map<string, Promise<string>>();

/** Pushes then pulls one new blob of `bytes` incompressible bytes (one per `round`) to `repo`. */
export async function blobThroughput(registryUrl: string, repo: string, bytes: number, round = 0): Promise<BlobResult> {
  const seed = `dr-bench-blob-${bytes}-${round}`;
  if (!digests.has(seed)) digests.set(seed, digestOfStream(deterministicStream(bytes, seed)));
  const digest = await digests.get(seed)!;
  const push = await timed(() => pushBlob(registryUrl, repo, bytes, seed, digest));
  const pull = await timed(() => pullBlob(registryUrl, repo, digest));
  if (pull.value !== digest) throw new Error(`pulled ${pull.value}, pushed ${digest}`);
  return { bytes, pushSeconds: push.seconds, pullSeconds: pull.seconds };
}

/** GETs of one manifest by tag from `connections` connections for `seconds`. */
export async function manifestLoad(registryUrl: string, repo: string, tag: string, opts: { connections: number; seconds: number }): Promise<LoadResult> {
  const url = `${registryUrl}/v2/${repo}/manifests/${tag}`;
  const accept = [
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.docker.distribution.manifest.v2+json',
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
  ].join(', ');
  const check = await fetch(url, { headers: { Accept: accept } });
  if (check.status !== 200) throw new Error(`GET ${url}: ${check.status}`);
  await check.arrayBuffer();
  const r = await autocannon({ url, connections: opts.connections, duration: opts.seconds, headers: { Accept: accept } });
  return {
    connections: opts.connections,
    seconds: r.duration,
    requests: r.requests.total,
    rps: r.requests.total / r.duration,
    p50ms: r.latency.p50,
    p99ms: r.latency.p99,
    errors: r.errors,
    non2xx: r.non2xx,
  };
}
