// Shared pieces of the retention and GC tests: images over a shared base pushed over HTTP, full
// pulls that check every digest, and a collector with test-sized delays.
import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { Registry } from '../../src/registry/registry.js';
import { Collector, type GcOptions } from '../../src/retention/gc.js';
import { OCI_MANIFEST, pushBlob, putManifest, sha256 } from '../http/client.js';

export interface PushedImage {
  digest: string;
  manifest: Buffer;
  blobs: string[];
  /** Bytes of what this point alone has: manifest, config and its unique layer. */
  ownBytes: number;
}

/** Pushes an image of `base` plus a fresh layer of `uniqueSize` random bytes, under `tag` (or by digest when undefined). */
export async function pushPoint(url: string, repo: string, tag: string | undefined, base: Buffer, uniqueSize = 2000): Promise<PushedImage> {
  const unique = randomBytes(uniqueSize);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }));
  for (const b of [base, unique, config]) await pushBlob(url, repo, b);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [base, unique].map((b) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(b), size: b.length })),
  };
  const pushed = await putManifest(url, repo, tag ?? sha256(JSON.stringify(manifest)), manifest, OCI_MANIFEST);
  if (pushed.res.status !== 201) throw new Error(`push ${repo}:${tag}: ${pushed.res.status} ${JSON.stringify(pushed.json)}`);
  return {
    digest: pushed.digest,
    manifest: pushed.bytes,
    blobs: [sha256(config), sha256(base), sha256(unique)],
    ownBytes: pushed.bytes.length + config.length + unique.length,
  };
}

/** Pulls a manifest by digest and every blob it names, checking each digest. */
export async function pullsCompletely(url: string, repo: string, image: PushedImage): Promise<void> {
  const m = await fetch(`${url}/v2/${repo}/manifests/${image.digest}`, { headers: { Accept: OCI_MANIFEST } });
  expect(m.status, `manifest ${image.digest} in ${repo}`).toBe(200);
  expect(sha256(Buffer.from(await m.arrayBuffer()))).toBe(image.digest);
  for (const digest of image.blobs) {
    const b = await fetch(`${url}/v2/${repo}/blobs/${digest}`);
    expect(b.status, `blob ${digest} in ${repo}`).toBe(200);
    expect(`sha256:${createHash('sha256').update(Buffer.from(await b.arrayBuffer())).digest('hex')}`).toBe(digest);
  }
}

export function collector(registry: Registry, options: Partial<GcOptions> = {}): Collector {
  return new Collector(registry, { graceMs: 0, sweepDelayMs: 50, retentionGraceMs: 0, deleteUntagged: false, ...options });
}

export async function blobExists(registry: Registry, digest: string): Promise<boolean> {
  return (await registry.blobs.claim(digest)) !== undefined;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
