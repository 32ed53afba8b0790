// Whole-system recovery points against the suite's docker daemon: a created (never started)
// container with two named volumes is backed up as one tagged index (its committed image and two
// volume snapshots, annotated with container, volume and mount path); then the container, its
// volumes and images are removed, and `system restore --create` brings all of it back.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DockerEngine, type ContainerInfo } from '../../src/client/docker-engine.js';
import { RegistryClient } from '../../src/client/registry-client.js';
import { A_CONTAINER, A_KIND, A_MOUNT, A_VOLUME, SYSTEM_ARTIFACT_TYPE } from '../../src/system/recovery-point.js';
import { docker } from '../e2e/clients.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { runCli } from '../volumes/cli.js';
import { compareTrees, makeCraftedTree } from '../volumes/trees.js';

describe('system backup and restore', () => {
  const dockerHost = inject('dockerHost');
  const engine = new DockerEngine(dockerHost);
  const id = randomBytes(3).toString('hex');
  const container = `drreg-app-${id}`;
  const volumes = [`drreg-data-${id}`, `drreg-logs-${id}`];
  const baseImage = `drreg-base-${id}:v1`;
  let registry: TestRegistry;
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-system-'));
    registry = await startTestRegistry();
  });
  afterAll(async () => {
    await engine.request('DELETE', `/containers/${container}?force=1`).catch(() => undefined);
    for (const v of volumes) await engine.request('DELETE', `/volumes/${v}?force=1`).catch(() => undefined);
    await docker(dockerHost)(['rmi', '-f', baseImage]).catch(() => undefined);
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('a created container with two volumes comes back on restore', async () => {
    const run = docker(dockerHost);
    const rootfs = path.join(work, 'rootfs');
    mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
    writeFileSync(path.join(rootfs, 'etc/app.conf'), 'setting=1\n');
    execFileSync('tar', ['-C', rootfs, '-cf', path.join(work, 'rootfs.tar'), '.']);
    await run(['import', path.join(work, 'rootfs.tar'), baseImage]);
    for (const v of volumes) await engine.createVolume(v);
    await run(['create', '--name', container, '-v', `${volumes[0]}:/var/lib/data`, '-v', `${volumes[1]}:/var/log/app`, '-e', 'MODE=prod', baseImage, '/bin/app', '--serve']);
    // Fill the volumes; keep reference copies.
    const refs = volumes.map((v) => path.join(work, `ref-${v}`));
    makeCraftedTree(refs[0]!);
    mkdirSync(refs[1]!);
    writeFileSync(path.join(refs[1]!, 'app.log'), 'started\n'.repeat(10_000));
    for (const [i, v] of volumes.entries()) {
      const mp = (await engine.volume(v))!.Mountpoint;
      execFileSync('cp', ['-a', `${refs[i]}/.`, mp]);
    }

    const env = { DOCKER_HOST: dockerHost, DOCKER_CONFIG: work };
    const ref = `${registry.hostPort}/systems/app:rp1`;
    const backup = await runCli(['system', 'backup', ref, container, '--json'], env);
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    const result = JSON.parse(backup.stdout) as { digest: string };

    // One index: the image and both volumes, annotated.
    const client = new RegistryClient({ registry: registry.hostPort });
    const index = JSON.parse((await client.getManifest('systems/app', 'rp1'))!.bytes.toString()) as {
      artifactType: string;
      manifests: { artifactType?: string; annotations: Record<string, string> }[];
    };
    expect(index.artifactType).toBe(SYSTEM_ARTIFACT_TYPE);
    expect(index.manifests.map((m) => [m.annotations[A_KIND], m.annotations[A_CONTAINER], m.annotations[A_VOLUME], m.annotations[A_MOUNT]])).toEqual([
      ['image', container, undefined, undefined],
      ['volume', container, volumes[0], '/var/lib/data'],
      ['volume', container, volumes[1], '/var/log/app'],
    ]);

    // The host is lost: container, volumes and images gone.
    await run(['rm', container]);
    for (const v of volumes) await run(['volume', 'rm', v]);
    const images = (await run(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter((l) => l.includes('systems/app') || l.startsWith('drreg-base-'));
    await run(['rmi', '-f', ...images]);

    const restore = await runCli(['system', 'restore', `${registry.hostPort}/systems/app@${result.digest}`, '--create', '--json'], env);
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    const info = await engine.container(container);
    expect(info.Config.Cmd).toEqual(['/bin/app', '--serve']);
    expect(info.Config.Env).toContain('MODE=prod');
    const mounts = (info as ContainerInfo).Mounts.map((m) => [m.Name, m.Destination]).sort();
    expect(mounts).toEqual([
      [volumes[0], '/var/lib/data'],
      [volumes[1], '/var/log/app'],
    ]);
    for (const [i, v] of volumes.entries()) {
      const mp = (await engine.volume(v))!.Mountpoint;
      expect(compareTrees(refs[i]!, mp, { checkRootMeta: false })).toEqual([]);
    }
  }, 180_000);
});
