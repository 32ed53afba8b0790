// A hostile recovery point (crafted by someone with push rights): a container spec whose
// "volume" is a host path would make `system restore --create` bind-mount the host's root into
// the restored container. Refused before anything is pulled, restored or created.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DockerEngine } from '../../src/client/docker-engine.js';
import { RegistryClient, sha256 } from '../../src/client/registry-client.js';
import { A_CONTAINER, A_CONTAINER_CONFIG, A_KIND, restoreSystem, SYSTEM_ARTIFACT_TYPE } from '../../src/system/recovery-point.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/volumes/format.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

describe('hostile system recovery points', () => {
  const engine = new DockerEngine(inject('dockerHost'));
  const id = randomBytes(3).toString('hex');
  let registry: TestRegistry;
  let client: RegistryClient;
  beforeAll(async () => {
    registry = await startTestRegistry();
    client = new RegistryClient({ registry: registry.hostPort });
  });
  afterAll(async () => {
    for (const n of [`evil-${id}-a`, `evil-${id}-b`, `evil-${id}-c`]) await engine.request('DELETE', `/containers/${n}?force=1`).catch(() => undefined);
    await registry?.stop();
  });

  async function craft(tag: string, volumes: { name: string; destination: string; readOnly: boolean }[], name: string): Promise<void> {
    const repo = 'hostile/system';
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: {} }));
    await client.putBlob(repo, sha256(config), config);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length }, layers: [] }));
    const digest = await client.putManifest(repo, `${tag}-image`, manifest, OCI_MANIFEST);
    const spec = { name, image: 'x', cmd: ['/bin/sh'], volumes };
    const index = {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      artifactType: SYSTEM_ARTIFACT_TYPE,
      manifests: [{ mediaType: OCI_MANIFEST, digest, size: manifest.length, annotations: { [A_KIND]: 'image', [A_CONTAINER]: name, [A_CONTAINER_CONFIG]: JSON.stringify(spec) } }],
    };
    await client.putManifest(repo, tag, Buffer.from(JSON.stringify(index)), OCI_INDEX);
  }

  it('a container volume that is a host path, or a bad mount, is refused and no container is created', async () => {
    const cases: [string, { name: string; destination: string; readOnly: boolean }[], string][] = [
      ['hostroot', [{ name: '/', destination: '/host', readOnly: false }], `evil-${id}-a`],
      ['relative', [{ name: '../../etc', destination: '/host', readOnly: false }], `evil-${id}-b`],
      ['colon', [{ name: 'data', destination: '/x:/host:rw', readOnly: false }], `evil-${id}-c`],
    ];
    for (const [tag, volumes, name] of cases) {
      await craft(tag, volumes, name);
      await expect(restoreSystem({ engine, client, registry: registry.hostPort, repo: 'hostile/system', reference: tag, create: true })).rejects.toThrow(/invalid (volume|mount)/);
      expect((await engine.request('GET', `/containers/${name}/json`)).status).toBe(404);
    }
  });
});
