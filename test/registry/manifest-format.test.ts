import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/registry/manifest-format.js';
import { DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST } from '../../src/registry/media-types.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const desc = (c: string, mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip', size = 10) => ({ mediaType, digest: D(c), size });
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('parseManifest', () => {
  it('finds the config and layers an image manifest needs, and its artifact type', () => {
    const m = parseManifest(json({ schemaVersion: 2, config: desc('a', 'application/vnd.oci.image.config.v1+json'), layers: [desc('b')] }), OCI_MANIFEST);
    expect(m.mediaType).toBe(OCI_MANIFEST);
    expect(m.blobs.map((b) => b.digest)).toEqual([D('a'), D('b')]);
    expect(m.artifactType).toBe('application/vnd.oci.image.config.v1+json');
  });

  it('finds the children of an index and its subject', () => {
    const m = parseManifest(json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [desc('c', OCI_MANIFEST)], subject: desc('d', OCI_MANIFEST), artifactType: 'application/x.sig' }), undefined);
    expect(m.manifests.map((x) => x.digest)).toEqual([D('c')]);
    expect(m.subject?.digest).toBe(D('d'));
    expect(m.artifactType).toBe('application/x.sig');
  });

  it('tells an OCI manifest from an index by shape when mediaType is absent', () => {
    expect(parseManifest(json({ schemaVersion: 2, manifests: [] }), 'application/json').mediaType).toBe(OCI_INDEX);
  });

  it.each([
    ['not JSON', Buffer.from('{'), OCI_MANIFEST, /invalid JSON/],
    ['an array', json([]), OCI_MANIFEST, /JSON object/],
    ['schemaVersion 1', json({ schemaVersion: 1, config: desc('a'), layers: [] }), OCI_MANIFEST, /schemaVersion/],
    ['schema 1', json({ schemaVersion: 1 }), 'application/vnd.docker.distribution.manifest.v1+prettyjws', /schema 1/],
    ['type mismatch', json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }), OCI_MANIFEST, /does not match/],
    ['bad digest', json({ schemaVersion: 2, config: { ...desc('a'), digest: 'sha256:xyz' }, layers: [] }), OCI_MANIFEST, /config\.digest/],
    ['negative size', json({ schemaVersion: 2, config: desc('a'), layers: [{ ...desc('b'), size: -1 }] }), OCI_MANIFEST, /layers\[0\]\.size/],
    ['no layers array', json({ schemaVersion: 2, config: desc('a') }), OCI_MANIFEST, /layers must be an array/],
    ['docker without mediaType', json({ schemaVersion: 2, config: desc('a'), layers: [desc('b')] }), DOCKER_MANIFEST, /declare their mediaType/],
    ['bad annotations', json({ schemaVersion: 2, config: desc('a'), layers: [], annotations: { a: 1 } }), OCI_MANIFEST, /annotations/],
    ['unknown type', json({ schemaVersion: 2, mediaType: 'text/plain', config: desc('a'), layers: [] }), undefined, /unsupported manifest media type/],
  ])('refuses %s as MANIFEST_INVALID', (_name, bytes, contentType, reason) => {
    try {
      parseManifest(bytes, contentType);
      expect.unreachable('parseManifest accepted an invalid manifest');
    } catch (err) {
      expect((err as { code: string }).code).toBe('MANIFEST_INVALID');
      expect(JSON.stringify((err as { detail: unknown }).detail)).toMatch(reason);
    }
  });
});
