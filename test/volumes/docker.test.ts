// The CLI against the suite's real docker daemon: a named volume filled with data is pushed with
// `volume push docker:NAME` (an --exec-before hook adding a dump, an --exec-after hook), the
// volume is removed, and `volume pull ... docker:NAME` creates it again with the same data.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DockerEngine } from '../../src/client/docker-engine.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { runCli } from './cli.js';
import { compareTrees, makeCraftedTree } from './trees.js';

describe('volume push/pull with docker volumes', () => {
  const dockerHost = inject('dockerHost');
  const engine = new DockerEngine(dockerHost);
  const name = `drreg-vol-${randomBytes(4).toString('hex')}`;
  let registry: TestRegistry;
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-vol-docker-'));
    registry = await startTestRegistry();
  });
  afterAll(async () => {
    await engine.request('DELETE', `/volumes/${name}?force=1`).catch(() => undefined);
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('a named volume survives push, removal and pull', async () => {
    const volume = await engine.createVolume(name);
    const reference = path.join(work, 'reference');
    makeCraftedTree(reference);
    // Filled as a user would, keeping owners, hard links and the fifo: cp -a.
    await rm(volume.Mountpoint, { recursive: true, force: true });
    mkdirSync(volume.Mountpoint);
    const { execFileSync } = await import('node:child_process');
    execFileSync('cp', ['-a', `${reference}/.`, volume.Mountpoint]);
    const dockerConfig = path.join(work, 'docker-config');
    mkdirSync(dockerConfig);
    writeFileSync(path.join(dockerConfig, 'config.json'), JSON.stringify({ auths: {} }));
    const env = { DOCKER_HOST: dockerHost, DOCKER_CONFIG: dockerConfig };
    const ref = `${registry.hostPort}/volumes/${name}:daily`;
    const afterMarker = path.join(work, 'after-ran');
    const push = await runCli(
      ['volume', 'push', `docker:${name}`, ref, '--json', '--exec-before', `echo 'dump of the database' > ${volume.Mountpoint}/dump.sql`, '--exec-after', `touch ${afterMarker}`],
      env,
    );
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
    const result = JSON.parse(push.stdout) as Record<string, unknown>;
    for (const k of ['digest', 'totalBytes', 'sentBytes', 'files', 'chunks', 'newChunks', 'seconds']) expect(result).toHaveProperty(k);
    expect(result.digest).toMatch(/^sha256:/);
    expect(existsSync(afterMarker)).toBe(true);
    writeFileSync(path.join(reference, 'dump.sql'), 'dump of the database\n');
    execFileSync('cp', ['-a', `${volume.Mountpoint}/dump.sql`, path.join(reference, 'dump.sql')]);

    await engine.request('DELETE', `/volumes/${name}`);
    expect(await engine.volume(name)).toBeUndefined();

    const pull = await runCli(['volume', 'pull', `${ref.replace(':daily', '')}@${result.digest as string}`, `docker:${name}`, '--json'], env);
    expect(pull.stderr).toBe('');
    expect(pull.code).toBe(0);
    expect(JSON.parse(pull.stdout)).toMatchObject({ digest: result.digest, files: result.files });
    const restored = (await engine.volume(name))!;
    expect(readFileSync(path.join(restored.Mountpoint, 'dump.sql'), 'utf8')).toBe('dump of the database\n');
    expect(compareTrees(reference, restored.Mountpoint, { checkRootMeta: false })).toEqual([]);
  }, 120_000);

  it('clear errors: an unknown volume, a non-empty destination, an unreachable registry', async () => {
    const env = { DOCKER_HOST: dockerHost, DOCKER_CONFIG: work };
    const unknown = await runCli(['volume', 'push', 'docker:no-such-volume-here', `${registry.hostPort}/v/x:1`], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/docker volume no-such-volume-here does not exist/);
    const full = path.join(work, 'full');
    mkdirSync(full);
    writeFileSync(path.join(full, 'x'), 'x');
    const notEmpty = await runCli(['volume', 'pull', `${registry.hostPort}/volumes/${name}:daily`, full], env);
    expect(notEmpty.stderr).toMatch(/is not empty/);
    const down = await runCli(['volume', 'pull', '127.0.0.1:9/v/x:1', path.join(work, 'd2')], env);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9/);
  }, 60_000);
});
