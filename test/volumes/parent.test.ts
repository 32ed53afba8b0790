// The parent of a push to a new tag (daily tags): without --parent, the tag's own snapshot, else
// latest, else the newest snapshot of the same source among the last tags; with --parent, that tag
// or digest. Through the CLI, counted by its --json: after one small file changes, only it is read.
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { runCli } from './cli.js';
import { pseudoRandom } from './trees.js';

const FILES = 20;

describe('volume push --parent and the default parent for a new tag', () => {
  let registry: TestRegistry;
  let work: string;
  let source: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-vol-parent-'));
    source = path.join(work, 'src');
    mkdirSync(path.join(source, 'sub'), { recursive: true });
    for (let i = 0; i < FILES; i++) writeFileSync(path.join(source, i % 2 ? 'sub' : '.', `f${i}`), pseudoRandom(`parent-${i}`, 50_000 + i * 1000));
    env = { DOCKER_CONFIG: work };
    registry = await startTestRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const push = async (tag: string, ...extra: string[]) => {
    const r = await runCli(['volume', 'push', source, `${registry.hostPort}/daily/vol:${tag}`, '--json', ...extra], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as { digest: string; parent?: string; filesRead: number; files: number };
  };
  // A change of content and size, so the file is certainly seen as changed.
  const change = (name: string, seed: string) => writeFileSync(path.join(source, name), pseudoRandom(seed, 12_345));

  it('a new tag: the newest snapshot of the same source; then latest; then --parent', async () => {
    const a = await push('2026-11-29');
    expect(a.filesRead).toBe(FILES);
    expect(a.parent).toBeUndefined();

    change('f0', 'changed-1');
    const b = await push('2026-11-30');
    expect(b.parent).toBe(a.digest);
    expect(b.filesRead).toBe(1);

    // latest is preferred over the tag list.
    const latest = await push('latest');
    expect(latest.parent).toBe(b.digest);
    expect(latest.filesRead).toBe(0);
    change('sub/f1', 'changed-2');
    const c = await push('2026-12-01');
    expect(c.parent).toBe(latest.digest);
    expect(c.filesRead).toBe(1);

    // --parent by digest and by tag, also an older one.
    change('f2', 'changed-3');
    const d = await push('2026-12-02', '--parent', a.digest);
    expect(d.parent).toBe(a.digest);
    expect(d.filesRead).toBe(3);
    const e = await push('2026-12-03', '--parent', '2026-12-02');
    expect(e.parent).toBe(d.digest);
    expect(e.filesRead).toBe(0);
  }, 120_000);

  it('a --parent that does not exist, or with --full, is an error', async () => {
    const missing = await runCli(['volume', 'push', source, `${registry.hostPort}/daily/vol:x`, '--parent', 'no-such-tag'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/parent daily\/vol:no-such-tag does not exist/);
    const both = await runCli(['volume', 'push', source, `${registry.hostPort}/daily/vol:x`, '--parent', 'latest', '--full'], env);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/--full and --parent exclude each other/);
  }, 60_000);
});
