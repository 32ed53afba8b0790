// Small HTTP helpers for the integration tests: pushing blobs and manifests, raw requests that
// keep the path exactly as written, and a check that the store holds no partial blob.
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { ObjectStore } from '../../src/storage/driver.js';
import { readAll } from '../../src/registry/objects.js';

export const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const sha512 = (b: Buffer | string) => `sha512:${createHash('sha512').update(b).digest('hex')}`;

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

export async function pushBlob(base: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const r = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes });
  if (r.status !== 201) throw new Error(`push blob: ${r.status} ${await r.text()}`);
  return digest;
}

export async function putManifest(base: string, repo: string, ref: string, body: unknown, contentType: string) {
  const bytes = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const res = await fetch(`${base}/v2/${repo}/manifests/${ref}`, { method: 'PUT', body: bytes, headers: { 'Content-Type': contentType } });
  return { res, bytes, digest: sha256(bytes), json: res.status >= 400 ? ((await res.json()) as { errors: Array<{ code: string }> }) : undefined };
}

/** An image manifest over fresh config and layer blobs pushed to `repo`. */
/** An OCI image manifest (as an object) over these config and layer bytes. */
export function imageManifest(config: Buffer, layers: Buffer[]) {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(l), size: l.length })),
  };
}

export async function pushImage(base: string, repo: string, seed: string, extra: Record<string, unknown> = {}) {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layer = Buffer.from(`layer of ${seed}`);
  await pushBlob(base, repo, config);
  await pushBlob(base, repo, layer);
  return { ...imageManifest(config, [layer]), ...extra };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request whose path is sent byte for byte (fetch would normalise "..", "%2e%2e"). */
export function raw(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export function errorCode(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { errors: Array<{ code: string }> }).errors[0]?.code;
  } catch {
    return undefined;
  }
}

/**
 * Sends a request head declaring `declared` body bytes, then only `sent` bytes, and hangs up:
 * a client that died mid-upload.
 */
export function truncatedRequest(base: string, method: string, path: string, declared: number, sent: Buffer): Promise<void> {
  const u = new URL(base);
  return new Promise((resolve) => {
    const socket = net.connect(Number(u.port), u.hostname, () => {
      socket.write(`${method} ${path} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${declared}\r\n\r\n`);
      socket.write(sent, () => setTimeout(() => socket.destroy(), 100));
    });
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
}

/** Every blob index points at parts that exist and whose bytes hash to the blob's digest. */
export async function assertNoPartialBlobs(store: ObjectStore): Promise<number> {
  let checked = 0;
  for await (const obj of store.list('blobs/')) {
    const index = JSON.parse((await readAll(await store.get(obj.key))).toString()) as { digest: string; size: number; parts: Array<{ key: string }> };
    const alg = index.digest.split(':')[0]!;
    const hash = createHash(alg);
    let size = 0;
    for (const part of index.parts) {
      const bytes = await readAll(await store.get(part.key));
      size += bytes.length;
      hash.update(bytes);
    }
    if (`${alg}:${hash.digest('hex')}` !== index.digest || size !== index.size) throw new Error(`blob ${index.digest} is partial or corrupt`);
    checked++;
  }
  return checked;
}

/** Keys under data/ that no blob index references: leftovers of failed uploads. */
export async function unreferencedParts(store: ObjectStore): Promise<string[]> {
  const referenced = new Set<string>();
  for await (const obj of store.list('blobs/')) {
    const index = JSON.parse((await readAll(await store.get(obj.key))).toString()) as { parts: Array<{ key: string }> };
    for (const p of index.parts) referenced.add(p.key);
  }
  const uploads = new Set<string>();
  for await (const obj of store.list('uploads/')) uploads.add(obj.key.split('/')[1]!);
  const out: string[] = [];
  for await (const obj of store.list('data/')) {
    if (!referenced.has(obj.key) && !uploads.has(obj.key.split('/')[1]!)) out.push(obj.key);
  }
  return out;
}
