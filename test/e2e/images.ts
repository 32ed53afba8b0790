// Deterministic container images without containers or network: layers are tar archives written
// here (content derived from a seed, so the same seed gives the same digest), packed into an OCI
// image layout that skopeo can push or load into docker. buildOciLayout does it in one call.
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

export interface Blob {
  digest: string;
  bytes: Buffer;
}

export interface LayerSpec {
  /** Same seed, same layer (and digest). */
  seed: string;
  /** Bytes of incompressible file content. */
  size: number;
  /** Text put in a file of the layer, for tests that look for it in storage. */
  marker?: string;
}

export interface Image {
  manifest: Blob;
  config: Blob;
  layers: Blob[];
}

export const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const blob = (bytes: Buffer): Blob => ({ digest: sha256(bytes), bytes });

/** Incompressible bytes from a seed (AES-CTR keystream). */
export function seededBytes(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

/** A ustar archive of regular files, with fixed owner, mode and mtime. */
export function tar(files: Array<{ name: string; content: Buffer }>): Buffer {
  const out: Buffer[] = [];
  for (const file of files) {
    const header = Buffer.alloc(512);
    header.write(file.name, 0, 100, 'utf8');
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(file.content.length.toString(8).padStart(11, '0') + '\0', 124);
    header.write('00000000000\0', 136); // mtime 0: reproducible
    header.write('        ', 148); // checksum placeholder
    header.write('0', 156); // regular file
    header.write('ustar\0' + '00', 257);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    out.push(header, file.content, Buffer.alloc((512 - (file.content.length % 512)) % 512));
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

function layer(spec: LayerSpec): { compressed: Blob; diffId: string } {
  const files = [{ name: `data/${spec.seed}.bin`, content: seededBytes(spec.seed, spec.size) }];
  if (spec.marker) files.push({ name: `etc/${spec.seed}.conf`, content: Buffer.from(`${spec.marker}\n`) });
  const archive = tar(files);
  return { compressed: blob(gzipSync(archive, { level: 1 })), diffId: sha256(archive) };
}

export function buildImage(layers: LayerSpec[], opts: { architecture?: string; configMarker?: string } = {}): Image {
  const built = layers.map(layer);
  const config = blob(
    Buffer.from(
      JSON.stringify({
        architecture: opts.architecture ?? 'amd64',
        os: 'linux',
        config: { Env: [`MARKER=${opts.configMarker ?? 'none'}`], Cmd: ['/bin/true'] },
        rootfs: { type: 'layers', diff_ids: built.map((l) => l.diffId) },
        history: built.map((_, i) => ({ created_by: `layer ${i}` })),
      }),
    ),
  );
  const manifest = blob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.bytes.length },
        layers: built.map((l) => ({ mediaType: OCI_LAYER_GZIP, digest: l.compressed.digest, size: l.compressed.bytes.length })),
      }),
    ),
  );
  return { manifest, config, layers: built.map((l) => l.compressed) };
}

/** An index of per-platform images. */
export function buildIndex(images: Array<{ image: Image; architecture: string }>): Blob {
  return blob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: images.map(({ image, architecture }) => ({
          mediaType: OCI_MANIFEST,
          digest: image.manifest.digest,
          size: image.manifest.bytes.length,
          platform: { architecture, os: 'linux' },
        })),
      }),
    ),
  );
}

/** Writes an OCI image layout holding `tag` -> image or index (with all its blobs). */
export async function writeLayout(dir: string, tag: string, content: { image: Image } | { index: Blob; images: Image[] }): Promise<void> {
  const blobsDir = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });
  const images = 'image' in content ? [content.image] : content.images;
  const all: Blob[] = images.flatMap((i) => [i.manifest, i.config, ...i.layers]);
  if ('index' in content) all.push(content.index);
  for (const b of all) await writeFile(path.join(blobsDir, b.digest.slice('sha256:'.length)), b.bytes);
  const top = 'image' in content ? { blob: content.image.manifest, mediaType: OCI_MANIFEST } : { blob: content.index, mediaType: OCI_INDEX };
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: top.mediaType, digest: top.blob.digest, size: top.blob.bytes.length, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
}

export interface ImageSpec {
  layers: LayerSpec[];
  architecture?: string;
  /** Put in the config's Env, for tests that look for it in storage. */
  configMarker?: string;
}

export interface Layout {
  /** What the tag points to: the image manifest, or the index. */
  digest: string;
  images: Image[];
  index?: Blob;
}

/** Writes an OCI layout where `tag` names one image, or an index of one image per architecture. */
export async function buildOciLayout(dir: string, spec: { tag: string } & ({ image: ImageSpec } | { index: ImageSpec[] })): Promise<Layout> {
  const build = (s: ImageSpec) => buildImage(s.layers, s);
  if ('image' in spec) {
    const image = build(spec.image);
    await writeLayout(dir, spec.tag, { image });
    return { digest: image.manifest.digest, images: [image] };
  }
  const images = spec.index.map(build);
  const index = buildIndex(images.map((image, i) => ({ image, architecture: spec.index[i]!.architecture ?? 'amd64' })));
  await writeLayout(dir, spec.tag, { index, images });
  return { digest: index.digest, images, index };
}
